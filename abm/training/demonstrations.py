"""The perfect-foresight optimum's dispatch of the fit days as demonstrations for behaviour
cloning (``p2pvar train --init clone``, ``docs/ea-matd3.md``).

A demonstration day is the optimum's LP of that day alone (:func:`abm.optimum.lp.solve_day`,
from the initial battery state, as a one-day episode starts), played through the training
environment with the actions the ``optimum`` policy plays (:func:`agents.replay.
planned_action_parts`, the whole net position offered at the truthful price): the
observations seen on the way and the actions played are the (input, target) pairs a clone
learns from. Only fit days are demonstrated (never a validation or test day). Each day's
dispatch is cached on disk beside the publications (:class:`abm.envs.publication_cache.
DayCache`, ``demonstrations/<key>``), the key hashing the environment's publication key, the
market config and the source of the LP and settlement modules. Torch-free.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

import abm.optimum.lp
import agents.dispatch_lp
import agents.settlement
from abm.envs.publication_cache import DayCache
from abm.envs.vec_env import MarketVecEnv
from abm.errors import ConfigError
from abm.output.provenance import to_jsonable
from agents.policy import ACTION_DIM, TRUTHFUL_PRICE
from agents.replay import planned_action_parts
from dso.blas import single_blas_thread
from dso.powerflow import RadialPowerFlow

#: Modules whose source is part of the demonstrations' cache key.
DEMONSTRATION_MODULES = (abm.optimum.lp, agents.dispatch_lp, agents.settlement)
#: Targets are kept this far inside ``[-1, 1]``: a ``tanh`` output reaches +-1 only at
#: infinite pre-activation (+-0.97: the trade share 0.985, the price 1.5 % of the spread).
TARGET_LIMIT = 0.97


@dataclass(frozen=True)
class DayDemonstration:
    """The optimum's dispatch of one day alone, ``(T, N)``: battery power (kW, injection >
    0) and the inverter's reactive power (kvar)."""

    battery_p_kw: np.ndarray
    q_inverter_kvar: np.ndarray


@dataclass(frozen=True)
class Demonstrations:
    """Observation-action pairs of the demonstrated days, one row per prosumer-interval."""

    obs: np.ndarray  # (M, obs_dim) float32
    actions: np.ndarray  # (M, ACTION_DIM) float32: the played actions, clipped to +-TARGET_LIMIT
    days: tuple[int, ...]
    cost_eur_per_day: np.ndarray  # the demonstrated days' team costs in the env


def demonstration_cache(env: MarketVecEnv, root: Path | None = None) -> DayCache[DayDemonstration]:
    """The optimum's dispatch of each day of ``env``'s market, computed once and cached."""
    h = hashlib.sha256(env.cache_key.encode())
    h.update(json.dumps(to_jsonable(env.config), sort_keys=True, default=str).encode())
    for module in DEMONSTRATION_MODULES:
        h.update(Path(module.__file__ or "").read_bytes())
    pf = RadialPowerFlow(env.feeder)

    def solve(day: int) -> DayDemonstration:
        world, index = env.run_inputs_of(day)
        with single_blas_thread():
            inputs = abm.optimum.lp.day_inputs(world, pf, index, env.initial_soc_kwh)
            dispatch = abm.optimum.lp.solve_day(inputs)
        return DayDemonstration(dispatch.battery_p_kw, dispatch.q_inverter_kvar)

    return DayCache("demonstrations", DayDemonstration, h.hexdigest()[:24], solve, root)


def record_demonstrations(
    env: MarketVecEnv, days: Sequence[int], *, progress: bool = True
) -> Demonstrations:
    """Play the optimum's dispatch of every one of ``days`` in ``env`` (``env.n_worlds`` days
    at a time; plain actors, no base policy) and record what each prosumer observed and the
    action that played the dispatch."""
    if env.base_policy:
        raise ConfigError(
            f"base_policy={env.base_policy!r}: the optimum's demonstrations are for plain "
            "actors (base_policy='')"
        )
    bad = [d for d in days if d not in env.train_days]
    if bad:
        raise ConfigError(f"demonstration day {bad[0]} is not a fit day of the environment")
    cache = demonstration_cache(env)
    b, n = env.n_worlds, env.n_agents
    obs_rows, action_rows, costs = [], [], []
    chunks = range(0, len(days), b)
    for start in tqdm(chunks, desc="demonstrations", disable=not progress):
        chunk = list(days[start : start + b])
        padded = [chunk[i % len(chunk)] for i in range(b)]
        plans = [cache.day(d) for d in padded]
        battery, q = planned_action_parts(
            np.stack([p.battery_p_kw for p in plans]),
            np.stack([p.q_inverter_kvar for p in plans]),
            env.battery_kw,
            env.inverter_kva,
        )  # (B, T, N)
        obs, _ = env.reset(0, padded)
        cost = np.zeros(b)
        for t in range(env.n_intervals):
            played = np.empty((b, n, ACTION_DIM), dtype=np.float32)
            played[..., 0], played[..., 1] = battery[:, t], 1.0
            played[..., 2], played[..., 3] = TRUTHFUL_PRICE, q[:, t]
            obs_rows.append(obs[: len(chunk)].reshape(-1, obs.shape[-1]))
            action_rows.append(played[: len(chunk)].reshape(-1, ACTION_DIM))
            obs, _, rewards, _, _ = env.step(played)
            cost -= rewards.sum(axis=1)
        costs.append(cost[: len(chunk)])
    return Demonstrations(
        obs=np.concatenate(obs_rows).astype(np.float32),
        actions=np.clip(np.concatenate(action_rows), -TARGET_LIMIT, TARGET_LIMIT),
        days=tuple(days),
        cost_eur_per_day=np.concatenate(costs),
    )
