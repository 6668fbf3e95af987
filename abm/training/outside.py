"""BenchMARL's learners by name and the run that trains one (``p2pvar train-outside``),
torch-free: the CLI lists and checks them without the ``torchrl`` extra.

An outside run is a :class:`TrainRunConfig` (:class:`OutsideRunConfig`) whose ``algo`` names
a BenchMARL algorithm of :data:`OUTSIDE_LEARNERS`: the same market (``sim``), residual
setting, seed, worlds, budget (``iterations``, ``env_steps``) and days as ``p2pvar train``,
made by the same run (:func:`abm.training.train_run.train_run`: ``config.json``,
``metrics.csv``, ``actors/``, ``summary.json``) with BenchMARL's training loop
(:mod:`abm.training.benchmarl_run`). Adding a BenchMARL algorithm with continuous actions:
one line in :data:`OUTSIDE_LEARNERS`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from abm.errors import ConfigError
from abm.training.train_config import LEARNER_SETTINGS, TrainRunConfig
from agents.registry import Registry

#: BenchMARL's learners by name: the address of each one's BenchMARL algorithm config
#: (imported when a run trains it), in this order (``--algo``).
OUTSIDE_LEARNERS: Registry[str] = Registry("algo", ConfigError)
OUTSIDE_LEARNERS["mappo"] = "benchmarl.algorithms:MappoConfig"
OUTSIDE_LEARNERS["ippo"] = "benchmarl.algorithms:IppoConfig"
OUTSIDE_LEARNERS["maddpg"] = "benchmarl.algorithms:MaddpgConfig"
OUTSIDE_LEARNERS["masac"] = "benchmarl.algorithms:MasacConfig"


@dataclass(frozen=True)
class OutsideLearnerConfig:
    """The run settings a BenchMARL learner takes (``agents.learners.LearnerConfig``);
    BenchMARL's own defaults otherwise (:mod:`abm.training.benchmarl_run`)."""

    SETTINGS: ClassVar[tuple[str, ...]] = ("updates_per_rollout",)

    updates_per_rollout: int = 50
    """Optimiser steps per iteration (``p2pvar train``'s learners' default; BenchMARL's:
    1000 for the off-policy learners, 45 epochs of minibatches for PPO). The off-policy
    learners take exactly that many, PPO that many rounded up to whole epochs over the
    iteration's minibatches."""

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], worlds: int) -> OutsideLearnerConfig:
        """The defaults with the run's given ``settings`` (``worlds`` is free)."""
        return dataclasses.replace(cls(), **settings)


@dataclass(frozen=True)
class OutsideRunConfig(TrainRunConfig):
    """A ``p2pvar train`` run of a BenchMARL learner (no time budget: BenchMARL stops at
    ``iterations`` or ``env_steps``; random initial weights, BenchMARL's)."""

    ALGOS: ClassVar[Registry[Any]] = OUTSIDE_LEARNERS

    algo: str = field(
        default="mappo", metadata={"help": "BenchMARL's learner", "choices": OUTSIDE_LEARNERS}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.minutes is not None:
            raise ConfigError(f"minutes={self.minutes!r}: a BenchMARL run has no time budget")
        if self.init != "random":
            raise ConfigError(f"init={self.init!r}: a BenchMARL run starts from random weights")

    def learner_config_class(self) -> type[OutsideLearnerConfig]:
        """The settings of every BenchMARL learner."""
        return OutsideLearnerConfig


#: The fields of ``p2pvar train`` that ``train-outside`` has no flag for: the time budget,
#: the checkpoint (BenchMARL's loop writes none), the start from a behaviour clone and the
#: settings no BenchMARL learner takes.
NOT_OUTSIDE = frozenset(
    {"minutes", "checkpoint_every", "checkpoint_buffer", "init"}
    | set(LEARNER_SETTINGS) - set(OutsideLearnerConfig.SETTINGS)
)
