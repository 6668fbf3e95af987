"""EA-MATD3: an evolutionary population of teams beside a MATD3 learner (ERL-style).

After ERL (Khadka & Tumer 2018) and its multi-agent descendant MERL (Majumdar et al.
2020). A team is one actor per prosumer. One generation:

1. sample ``W`` training days; the ``P`` population teams and the MATD3 learner's team
   each play them in their own block of ``W`` worlds of ONE batched environment
   (``B = (P + 1) W``): population teams act deterministically, the learner with
   exploration noise, and all teams' actors run in one stacked forward pass;
2. every transition of every team goes to the learner's replay buffer;
3. fitness of a team = its mean return (minus the sum of its prosumers' bills) over the
   ``W`` days; the best team is the champion (evaluated and exported);
4. the learner makes its MATD3 updates from the shared buffer;
5. evolution (:func:`agents.learning.evolution.evolve`): elites kept, every other slot a
   per-agent crossover of two tournament winners, mutated;
6. the learner's team is copied into the slot of the generation's worst team (never an
   elite), so gradient knowledge enters the population every generation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from agents.learning.env_protocol import EnvDims, VecMarketEnv
from agents.learning.errors import LearningConfigError
from agents.learning.evolution import EvolutionConfig, evolve, population_diversity
from agents.learning.imitation import team_of
from agents.learning.matd3 import MATD3, MATD3Config, make_actors
from agents.learning.networks import Params
from agents.learning.rollout import run_episode, team_actions
from agents.learning.seeding import draw_seed


@dataclass(frozen=True)
class EAMATD3Config:
    """EA-MATD3 settings; defaults and their sources in docs/ea-matd3.md."""

    learner: MATD3Config = field(default_factory=MATD3Config)
    """The MATD3 learner beside the population."""
    evolution: EvolutionConfig = field(default_factory=EvolutionConfig)
    """Population size and evolution operators."""

    #: The run settings EA-MATD3 takes (``agents.learners``): MATD3's and ``population``.
    SETTINGS: ClassVar[tuple[str, ...]] = (*MATD3Config.SETTINGS, "population")

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], worlds: int) -> EAMATD3Config:
        """The defaults with the run's given ``settings``; ``worlds`` must be a multiple of
        population + 1 (every team plays the same days)."""
        given = dict(settings)
        evolution = EvolutionConfig()
        if "population" in given:
            evolution = dataclasses.replace(evolution, population=given.pop("population"))
        teams = evolution.population + 1
        if worlds % teams:
            raise LearningConfigError(
                f"worlds={worlds} must be a multiple of population + 1 = {teams} "
                "(every ea-matd3 team plays the same days)"
            )
        return cls(learner=MATD3Config.from_settings(given, worlds), evolution=evolution)


class EAMATD3:
    """A population of teams ``[P, N, ...]`` and a MATD3 learner sharing one replay buffer."""

    name = "ea-matd3"
    config_class = EAMATD3Config

    def __init__(self, dims: EnvDims, config: EAMATD3Config, generator: torch.Generator):
        self.config = config
        self.generator = generator
        p = config.evolution.population
        self.learner = MATD3(dims, config.learner, generator)
        self.actor_hidden = self.learner.actor_hidden
        teams = make_actors((p, dims.n_agents), dims, config.learner, generator)
        self.population: Params = [t.detach().clone() for t in teams.params()]
        self.champion: Params = self.learner.policy_team()

    def start_from(self, actor: Params) -> None:
        """Every team of the population, the learner's actors and the champion become
        copies of ``actor`` (one actor's parameters, e.g. a behaviour clone); evolution's
        mutations then spread the population around it."""
        self.learner.start_from(actor)
        lead = (self.config.evolution.population, self.learner.n_agents)
        self.population = team_of(actor, lead)
        self.champion = self.learner.policy_team()

    def policy_team(self) -> Params:
        """The champion of the last generation (the learner's team before the first)."""
        return self.champion

    def iterate(self, env: VecMarketEnv) -> dict[str, float]:
        """One generation (module docstring, steps 1-6)."""
        p = self.config.evolution.population
        if env.n_worlds % (p + 1):
            raise LearningConfigError(
                f"n_worlds = {env.n_worlds}: must be a multiple of population + 1 = {p + 1}"
            )
        w = env.n_worlds // (p + 1)
        train_days = list(env.train_days)
        picks = torch.randint(0, len(train_days), (w,), generator=self.generator)
        days = [train_days[int(i)] for i in picks] * (p + 1)
        teams = [
            torch.cat([pop, mine], dim=0)
            for pop, mine in zip(self.population, self.learner.policy_team(), strict=True)
        ]

        def act(obs: torch.Tensor) -> torch.Tensor:
            actions = team_actions(teams, obs)
            actions[p * w :] = self.learner.add_exploration(actions[p * w :])
            return actions

        stats = run_episode(
            env, act, seed=draw_seed(self.generator), days=days, buffer=self.learner.buffer
        )
        team_returns = stats.world_returns.reshape(p + 1, w).mean(dim=1).float()
        fitness = team_returns[:p]
        losses = self.learner.train()
        best = int(fitness.argmax())
        self.champion = [t[best : best + 1].clone() for t in self.population]
        self.population, ranking = evolve(
            self.population, fitness, self.config.evolution, self.generator
        )
        worst = int(ranking[-1])
        for slot, mine in zip(self.population, self.learner.policy_team(), strict=True):
            slot[worst] = mine[0]
        return {
            "episode_return": float(team_returns[p]),
            "coverage": stats.coverage,
            "fitness_best": float(fitness.max()),
            "fitness_mean": float(fitness.mean()),
            "diversity": population_diversity(self.population),
            **losses,
        }

    def state_dict(self, *, include_buffer: bool) -> dict[str, Any]:
        """The learner's state (with the shared generator), the population and the champion."""
        return {
            "learner": self.learner.state_dict(include_buffer=include_buffer),
            "population": [t.clone() for t in self.population],
            "champion": [t.clone() for t in self.champion],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.learner.load_state_dict(state["learner"])
        self.population = [t.clone() for t in state["population"]]
        self.champion = [t.clone() for t in state["champion"]]
