"""The configuration of one training run (``p2pvar train``), written to its ``config.json``.

Torch-free, so the command line can be built and checked without the ``train`` extra. The
learner settings left at ``None`` take the learner's defaults (``docs/ea-matd3.md``); the
resolved learner config is written beside this one.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from enum import Enum, StrEnum

from abm.config import Market, SimConfig, enum_value
from abm.errors import ConfigError
from abm.inputs.profiles import TEST_DAYS, TRAIN_DAYS
from abm.output.provenance import to_jsonable
from agents.actor import BASE_POLICIES


class AlgoName(StrEnum):
    """The learners (keys of ``agents.learning.train.ALGORITHMS``)."""

    EA_MATD3 = "ea-matd3"
    MATD3 = "matd3"
    MADDPG = "maddpg"
    ITD3 = "itd3"


class OutsideAlgo(StrEnum):
    """BenchMARL's learners that ``p2pvar train-outside`` trains (``abm.training.outside``)."""

    MAPPO = "mappo"
    IPPO = "ippo"
    MADDPG = "maddpg"
    MASAC = "masac"


#: Help of the market's fields, shared by the run's market fields (defaults too).
_SIM_META = {f.name: f.metadata for f in dataclasses.fields(SimConfig)}
#: Help suffix of the learner settings left unset.
LEARNER_DEFAULT = "; unset: the learner's default (docs/ea-matd3.md)"
#: Fields a resumed run may change (its budget); every other field must match the run's.
BUDGET_FIELDS = frozenset({"iterations", "minutes", "env_steps"})


@dataclass(frozen=True)
class TrainRunConfig:
    """One training run: learner, market, seed, worlds, budget and bookkeeping."""

    algo: AlgoName = field(default=AlgoName.EA_MATD3, metadata={"help": "the learner"})
    network: str = field(default=SimConfig.network, metadata=_SIM_META["network"])
    market: Market = field(default=SimConfig.market, metadata=_SIM_META["market"])
    scenario: str | None = field(default=SimConfig.scenario, metadata=_SIM_META["scenario"])
    base_policy: str = field(
        default="tou",
        metadata={
            "help": "the actors correct this baseline's actions (residual policy learning: "
            f"{', '.join(repr(p) for p in BASE_POLICIES if p)}); '' for plain actors"
        },
    )
    residual_scale: float = field(
        default=0.1, metadata={"help": "weight of the actors' outputs added to the base action"}
    )
    seed: int = field(default=0, metadata={"help": "seed of every random draw of the run"})
    worlds: int = field(
        default=44,
        metadata={
            "help": "worlds (days) stepped together in one rollout; ea-matd3: a multiple of "
            "population + 1, each team playing worlds / (population + 1) days"
        },
    )
    iterations: int = field(
        default=30,
        metadata={"help": "rollouts (ea-matd3: generations) in total, resumed ones included"},
    )
    minutes: float | None = field(
        default=None,
        metadata={"help": "stop earlier when the training time (resumed runs included) is up"},
    )
    env_steps: int | None = field(
        default=None,
        metadata={"help": "stop earlier after this many environment steps (intervals of a world)"},
    )
    eval_every: int = field(
        default=10, metadata={"help": "evaluate on the held-out days every this many iterations"}
    )
    checkpoint_every: int = field(
        default=10, metadata={"help": "write checkpoint and metrics every this many iterations"}
    )
    checkpoint_buffer: bool = field(
        default=True,
        metadata={"help": "store the replay buffer in the checkpoint (an exact --resume)"},
    )
    train_days: int | None = field(
        default=None,
        metadata={
            "help": f"train on this many of the {len(TRAIN_DAYS)} training days, spread over "
            "the year; unset: all"
        },
    )
    eval_days: int | None = field(
        default=None,
        metadata={
            "help": f"evaluate on this many of the {len(TEST_DAYS)} held-out days, spread over "
            "the year; unset: all"
        },
    )
    population: int | None = field(
        default=None, metadata={"help": "ea-matd3: teams in the population" + LEARNER_DEFAULT}
    )
    updates_per_rollout: int | None = field(
        default=None, metadata={"help": "gradient updates after each rollout" + LEARNER_DEFAULT}
    )
    learning_starts: int | None = field(
        default=None,
        metadata={"help": "transitions stored (random actions) before updates" + LEARNER_DEFAULT},
    )
    batch_size: int | None = field(
        default=None, metadata={"help": "transitions per update" + LEARNER_DEFAULT}
    )
    buffer_size: int | None = field(
        default=None, metadata={"help": "replay capacity in transitions" + LEARNER_DEFAULT}
    )

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            kind = _HINTS[f.name]
            if isinstance(kind, type) and issubclass(kind, Enum):
                object.__setattr__(self, f.name, enum_value(kind, f.name, getattr(self, f.name)))
        at_least_one = ("seed", "worlds", "iterations", "eval_every", "checkpoint_every")
        for name in at_least_one:
            _check_int(name, getattr(self, name), 0 if name == "seed" else 1)
        optional_ints = {
            "env_steps": 1,
            "train_days": 1,
            "eval_days": 1,
            "population": 2,
            "updates_per_rollout": 1,
            "learning_starts": 0,
            "batch_size": 1,
            "buffer_size": 1,
        }
        for name, low in optional_ints.items():
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), low)
        for name, days in (("train_days", TRAIN_DAYS), ("eval_days", TEST_DAYS)):
            if (getattr(self, name) or 0) > len(days):
                raise ConfigError(f"{name}={getattr(self, name)!r} must be <= {len(days)}")
        check_residual(self.base_policy, self.residual_scale)
        minutes = self.minutes
        if minutes is not None and (
            isinstance(minutes, bool) or not isinstance(minutes, int | float) or not minutes > 0
        ):
            raise ConfigError(f"minutes={minutes!r} must be a number > 0")
        if self.population is not None and self.algo != AlgoName.EA_MATD3:
            raise ConfigError(f"population={self.population!r} applies to ea-matd3 only")


def check_residual(base_policy: object, residual_scale: object) -> None:
    """Refuse a base policy not in :data:`BASE_POLICIES` or a scale that is not a positive
    number (one line naming the field)."""
    if base_policy not in BASE_POLICIES:
        raise ConfigError(f"base_policy={base_policy!r}: expected one of {BASE_POLICIES}")
    if (
        isinstance(residual_scale, bool)
        or not isinstance(residual_scale, int | float)
        or not (math.isfinite(residual_scale) and residual_scale > 0)
    ):
        raise ConfigError(f"residual_scale={residual_scale!r}: must be a positive number")


def check_resumable(saved: dict[str, object], config: TrainRunConfig, where: str) -> None:
    """Refuse to resume the run whose config (as written to ``config.json``) is ``saved``
    with ``config`` if any field but the budget differs; ``where`` names the file."""
    for f in dataclasses.fields(config):
        if f.name in BUDGET_FIELDS:
            continue
        new = to_jsonable(getattr(config, f.name))
        old = saved.get(f.name, "<missing>")
        if old != new:
            raise ConfigError(
                f"--resume: {where} has {f.name}={old!r}, this run {f.name}={new!r}; "
                "resume with the run's settings (only --iterations, --minutes and "
                "--env-steps may change) or train into another folder"
            )


def spread_days(days: typing.Sequence[int], count: int | None) -> tuple[int, ...]:
    """``count`` of ``days`` evenly spread over the sequence (all of them for ``None``)."""
    if count is None or count >= len(days):
        return tuple(days)
    step = len(days) / count
    return tuple(days[int(k * step)] for k in range(count))


def _check_int(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name}={value!r} must be an integer >= {low}")


_HINTS = typing.get_type_hints(TrainRunConfig)
