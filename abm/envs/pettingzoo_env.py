"""PettingZoo ``ParallelEnv`` over the Mesa market model (the RL face of the simulator).

One episode is one day (``SimConfig.days`` days) of the chosen day set; a step is one market
interval. Agents are the prosumer ids; each observes :func:`agents.policy.observation_vector`
of its observation and its own outlook (format 3: features named in
:data:`agents.policy.OBSERVATION_FEATURES`; the outlook's forecasts are built as the MPC's,
:func:`abm.inputs.mpc_policies.prosumer_outlooks`) and acts in ``[-1, 1]^4``
(:class:`agents.policy.Action`). The reward is minus the
prosumer's bill of the interval (EUR); the last step's bill carries the value of the stored
energy used up over the episode (``docs/market.md``, stored energy), so emptying the battery
at the end is no free energy. :meth:`MarketParallelEnv.state` is the global state
for centralised critics: every agent's observation plus the last bus voltages.
The same seed gives the same day and the same trajectory.
:meth:`MarketParallelEnv.policy_actions` gives the actions of the config's policy (a baseline
or ``checkpoint:DIR``, every prosumer its own actor), to play it or to mix it with a learner.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from abm.config import SimConfig
from abm.inputs.mpc_policies import prosumer_outlooks, year_profiles
from abm.inputs.run_inputs import agent_rngs, build_run_inputs, day_set_days
from abm.sim.model import MarketModel
from agents.policy import (
    ACTION_DIM,
    OBS_BOUND,
    OBS_DIM,
    ExternalPolicy,
    Policy,
    observation_vector,
)
from agents.policy_registry import policy_maker
from agents.prosumer import ProsumerAgent


class MarketParallelEnv(ParallelEnv):
    """The multi-market as a parallel multi-agent environment."""

    metadata: ClassVar[dict[str, Any]] = {"name": "p2pvar_market_v0", "render_modes": []}

    def __init__(self, config: SimConfig | None = None, *, sample_days: bool = True) -> None:
        """``sample_days``: each reset draws the episode's first day at random from the day set
        (seeded by ``reset(seed=...)``); otherwise every episode starts at ``config.first_day``."""
        self.render_mode: str | None = None  # nothing to render (PettingZoo's attribute)
        self.config = config or SimConfig()
        self.sample_days = sample_days
        self._template = build_run_inputs(self.config)
        self.possible_agents = list(self._template.prosumer_ids)
        self.agents: list[str] = []
        self.n_bus = self._template.feeder.n_bus
        self._profiles = year_profiles(self._template.scenario)
        self._rng = np.random.default_rng(self.config.seed)
        self.model: MarketModel | None = None

    @functools.cache  # noqa: B019 - the same space object per agent is required
    def observation_space(self, agent: str) -> spaces.Box:
        """Observation box of ``agent``."""
        return spaces.Box(-OBS_BOUND, OBS_BOUND, (OBS_DIM,), np.float32)

    @functools.cache  # noqa: B019
    def action_space(self, agent: str) -> spaces.Box:
        """Action box of ``agent``."""
        return spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
        """Start an episode; ``options={"first_day": k}`` picks the day index in the set."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        first_day = self.config.first_day
        if options and "first_day" in options:
            first_day = int(options["first_day"])
        elif self.sample_days:
            pool = day_set_days(self.config.day_set)
            first_day = int(self._rng.integers(0, len(pool) - self.config.days + 1))
        model_seed = int(self._rng.integers(0, 2**31 - 1))
        config = dataclasses.replace(self.config, first_day=first_day, seed=model_seed)
        world = build_run_inputs(
            config, feeder=self._template.feeder, scenario=self._template.scenario
        )
        self.policies = {pid: ExternalPolicy() for pid in self.possible_agents}
        rngs = agent_rngs(model_seed, len(self.possible_agents))
        make = policy_maker(config.policy, world)
        self.config_policies: dict[str, Policy] = {
            pid: make(i, rngs[i]) for i, pid in enumerate(self.possible_agents)
        }
        self.model = MarketModel(config, world=world, policies=self.policies)
        self._outlooks = dict(
            zip(self.possible_agents, prosumer_outlooks(world, self._profiles), strict=True)
        )
        self.agents = list(self.possible_agents)
        self.model.begin_interval()
        return self._observations(), {pid: {} for pid in self.agents}

    def step(self, actions: dict[str, np.ndarray]) -> tuple[dict, dict, dict, dict, dict]:
        """Apply every agent's action for the current interval and advance one interval."""
        model = self._model()
        for pid in self.agents:
            self.policies[pid].set(actions[pid])
        model.finish_interval()
        for a in model.prosumers:  # a config policy that learns from its outcomes (the MPC)
            settled = getattr(self.config_policies[a.logic.agent_id], "settled", None)
            if settled is not None and a.logic.last_outcome is not None:
                settled(a.logic.last_outcome)
        rewards = {a.logic.agent_id: -_bill_eur(a.logic) for a in model.prosumers}
        infos = {a.logic.agent_id: {"errors": list(a.logic.errors)} for a in model.prosumers}
        done = model.done
        terminations = {pid: False for pid in self.agents}
        truncations = {pid: done for pid in self.agents}
        if done:
            obs = {pid: np.zeros(OBS_DIM, np.float32) for pid in self.agents}
            self.agents = []
        else:
            model.begin_interval()
            obs = self._observations()
        return obs, rewards, terminations, truncations, infos

    def policy_actions(self) -> dict[str, np.ndarray]:
        """Every live agent's action from the config's policy (``SimConfig.policy``) on its
        current observation."""
        return {
            a.logic.agent_id: self.config_policies[a.logic.agent_id].act(a.logic.observe())
            for a in self._model().prosumers
            if a.logic.agent_id in self.agents
        }

    def _model(self) -> MarketModel:
        if self.model is None:
            raise RuntimeError("call reset() before step()")
        return self.model

    def _observations(self) -> dict[str, np.ndarray]:
        out = {}
        for a in self._model().prosumers:
            obs = a.logic.observe()
            out[a.logic.agent_id] = observation_vector(
                obs, self._outlooks[a.logic.agent_id].at(obs)
            )
        return out

    def state(self) -> np.ndarray:
        """Global state: all observations (agent order) and the last bus voltages (pu)."""
        obs = self._observations() if self.model is not None else {}
        parts = [obs.get(pid, np.zeros(OBS_DIM, np.float32)) for pid in self.possible_agents]
        vm = self.model.dso.logic.last_vm_pu if self.model is not None else None
        parts.append(np.ones(self.n_bus, np.float32) if vm is None else np.asarray(vm, np.float32))
        return np.concatenate(parts)


def _bill_eur(prosumer: ProsumerAgent) -> float:
    """The prosumer's bill of the interval just settled (its reward is minus that)."""
    outcome = prosumer.last_outcome
    if outcome is None:
        raise RuntimeError(f"prosumer {prosumer.agent_id} has no settled interval")
    return float(outcome.bill_eur)
