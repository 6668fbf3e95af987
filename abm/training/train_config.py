"""The configuration of one training run (``p2pvar train``), written to its ``config.json``.

Torch-free, so the command line can be built and checked without the ``train`` extra. The
market trained on is a whole :class:`SimConfig` (``sim``: network, market mode, scenario,
fairness, Var pricing, network charge, envelope rule, ...; its flags are simulate's), so a
trained team's ``config.json`` records it and ``p2pvar evaluate`` refuses another market
(:func:`check_trained_market`). The learner settings left at ``None`` take the learner's
defaults (``docs/ea-matd3.md``); the resolved learner config is written beside this one.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from abm.config import DaySet, SimConfig
from abm.errors import ConfigError
from abm.inputs.profiles import FIT_DAYS, TEST_DAYS, VALIDATION_DAYS
from abm.output.jsonfile import json_object, read_json
from abm.output.provenance import to_jsonable
from agents.actor import BASE_POLICIES
from agents.learners import LEARNERS, learner_class
from agents.registry import Registry

if TYPE_CHECKING:
    from agents.learners import LearnerConfig

#: The fields of the market (:class:`SimConfig`) a training run does not take: the policy is
#: the learner's, the days are drawn by the environment, the seed is the run's own, and the
#: vectorised environment clears by the auction. Every other field is trained on.
NOT_TRAINED = frozenset({"policy", "protocol", "days", "day_set", "first_day", "seed"})
#: The run settings that go to the learner's config (``agents.learners.LearnerConfig``).
LEARNER_SETTINGS = (
    "updates_per_rollout",
    "learning_starts",
    "batch_size",
    "buffer_size",
    "population",
)
#: Help suffix of the learner settings left unset.
LEARNER_DEFAULT = "; unset: the learner's default (docs/ea-matd3.md)"
#: How a run's actors start (``init``).
INITS = ("random", "clone")
#: Fields a resumed run may change (its budget); every other field must match the run's.
BUDGET_FIELDS = frozenset({"iterations", "minutes", "env_steps"})


@dataclass(frozen=True)
class TrainRunConfig:
    """One training run: learner, market, seed, worlds, budget and bookkeeping."""

    #: The learners ``algo`` names (a subclass trains another family: ``abm.training.outside``).
    ALGOS: ClassVar[Registry[Any]] = LEARNERS

    algo: str = field(default="ea-matd3", metadata={"help": "the learner", "choices": LEARNERS})
    sim: SimConfig = field(
        default_factory=SimConfig,
        metadata={"help": "the market trained on", "exclude": NOT_TRAINED},
    )
    base_policy: str = field(
        default="tou",
        metadata={
            "help": "the actors correct this baseline's actions (residual policy learning: "
            f"{', '.join(repr(p) for p in BASE_POLICIES if p)}); '' for plain actors"
        },
    )
    init: str = field(
        default="random",
        metadata={
            "help": "how the actors start: 'clone' from a behaviour clone of the optimum's "
            "dispatch on the fit days (docs/ea-matd3.md), 'random' from random weights",
            "choices": INITS,
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
            "help": f"draw episodes from this many of the {len(FIT_DAYS)} training days (less "
            "validation), spread over the year; unset: all"
        },
    )
    val_days: int | None = field(
        default=None,
        metadata={
            "help": f"evaluate and select the exported team on this many of the "
            f"{len(VALIDATION_DAYS)} validation days, spread over the year; unset: all"
        },
    )
    test_days: int = field(
        default=0,
        metadata={
            "help": f"after training, play the exported team once on this many of the "
            f"{len(TEST_DAYS)} test days (one-day episodes, spread over the year) and add them "
            "to summary.json; training never reads them; 0: none"
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
        self.ALGOS.check(self.algo, ConfigError)
        if not isinstance(self.sim, SimConfig):
            raise ConfigError(f"sim={self.sim!r} must be a SimConfig")
        at_least_one = ("seed", "worlds", "iterations", "eval_every", "checkpoint_every")
        for name in at_least_one:
            _check_int(name, getattr(self, name), 0 if name == "seed" else 1)
        optional_ints = {
            "env_steps": 1,
            "train_days": 1,
            "val_days": 1,
            "population": 2,
            "updates_per_rollout": 1,
            "learning_starts": 0,
            "batch_size": 1,
            "buffer_size": 1,
        }
        for name, low in optional_ints.items():
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), low)
        _check_int("test_days", self.test_days, 0)
        limits = (("train_days", FIT_DAYS), ("val_days", VALIDATION_DAYS), ("test_days", TEST_DAYS))
        for name, days in limits:
            if (getattr(self, name) or 0) > len(days):
                raise ConfigError(f"{name}={getattr(self, name)!r} must be <= {len(days)}")
        check_residual(self.base_policy, self.residual_scale)
        if self.init not in INITS:
            raise ConfigError(f"init={self.init!r}: expected one of {INITS}")
        if self.init == "clone" and self.base_policy:
            raise ConfigError(
                f"init='clone' clones plain actors: it needs base_policy='', not "
                f"{self.base_policy!r}"
            )
        minutes = self.minutes
        if minutes is not None and (
            isinstance(minutes, bool) or not isinstance(minutes, int | float) or not minutes > 0
        ):
            raise ConfigError(f"minutes={minutes!r} must be a number > 0")

    def learner_settings(self) -> dict[str, object]:
        """The learner settings given (not ``None``), by name (:data:`LEARNER_SETTINGS`)."""
        given = {name: getattr(self, name) for name in LEARNER_SETTINGS}
        return {name: value for name, value in given.items() if value is not None}

    def learner_config_class(self) -> type[LearnerConfig]:
        """The config class of the run's learner (imports the learner, so torch)."""
        config_class: type[LearnerConfig] = learner_class(self.algo, ConfigError).config_class
        return config_class


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
    now = flat_config(config)
    before = {**flat_config(dataclasses.replace(config, sim=SimConfig())), **flat_saved(saved)}
    for name, new in now.items():
        if name in BUDGET_FIELDS:
            continue
        old = before.get(name, "<missing>")
        if old != new:
            raise ConfigError(
                f"--resume: {where} has {name}={old!r}, this run {name}={new!r}; "
                "resume with the run's settings (only --iterations, --minutes and "
                "--env-steps may change) or train into another folder"
            )


def flat_config(config: TrainRunConfig) -> dict[str, object]:
    """``config`` as JSON values, one key per field, the market's as ``sim.<field>`` (only
    those trained on)."""
    flat = {f.name: to_jsonable(getattr(config, f.name)) for f in dataclasses.fields(config)}
    del flat["sim"]
    for name, value in to_jsonable(config.sim).items():
        if name not in NOT_TRAINED:
            flat[f"sim.{name}"] = value
    return flat


def flat_saved(saved: Mapping[str, object]) -> dict[str, object]:
    """A run's saved config (``config.json``'s ``config``) flattened as :func:`flat_config`;
    a run written before the config held the whole market (``network``, ``market`` and
    ``scenario`` at the top, the rest of the market at its defaults, which training then
    always used) gives its three market fields as ``sim.<field>``."""
    flat = {k: v for k, v in saved.items() if k != "sim"}
    sim = saved.get("sim")
    market = dict(sim) if isinstance(sim, Mapping) else {}
    for name in ("network", "market", "scenario"):
        if name in flat and not isinstance(sim, Mapping):
            market[name] = flat.pop(name)
    flat |= {f"sim.{k}": v for k, v in market.items() if k not in NOT_TRAINED}
    return flat


def trained_market(checkpoint: Path) -> dict[str, object] | None:
    """The market a checkpoint's team was trained on, as ``sim.<field>`` JSON values (the
    defaults for fields the run did not record: training used them); ``None`` for a folder
    of actor files without its run's ``config.json`` or ``summary.json``. ``checkpoint``: a
    training run's folder or its ``actors/`` folder."""
    run = Path(checkpoint)
    if not (run / "actors").is_dir() and run.name == "actors":
        run = run.parent
    recorded: Mapping[str, object]
    for name, key in (("config.json", "config"), ("summary.json", "setup")):
        if (run / name).is_file():
            doc = json_object(read_json(run / name, "--checkpoint", ConfigError), str(run / name))
            recorded = json_object(doc.get(key), f"{run / name}: {key}")
            break
    else:
        return None
    defaults = flat_config(TrainRunConfig())
    market = {k: v for k, v in defaults.items() if k.startswith("sim.")}
    saved = flat_saved(recorded)
    return {k: saved.get(k, v) for k, v in market.items()}


def check_trained_market(checkpoint: Path, sim: SimConfig) -> None:
    """Refuse, in one line naming the field and both values, to play the team of
    ``checkpoint`` in a market other than the one it was trained on (:func:`trained_market`;
    the fields of :data:`NOT_TRAINED` may differ)."""
    trained = trained_market(checkpoint)
    if trained is None:
        return
    now = {k: v for k, v in flat_config(TrainRunConfig(sim=sim)).items() if k in trained}
    for key, value in now.items():
        if trained[key] != value:
            name = key.removeprefix("sim.")
            raise ConfigError(
                f"--checkpoint {checkpoint}: its team was trained with {name}={trained[key]!r}, "
                f"this run has {name}={value!r}; evaluate in the market it was trained on"
            )


#: The day sets a run plays its exported team on, each with the field that sizes it.
DAY_SETS: dict[DaySet, str] = {DaySet.VALIDATION: "val_days", DaySet.TEST: "test_days"}


def played_days(config: TrainRunConfig) -> dict[DaySet, tuple[int, ...]]:
    """The calendar days a training run of ``config`` plays its exported team on, per day set
    (:data:`DAY_SETS`; a set sized 0 left out), in the order of its ``summary.json``'s
    per-day costs."""
    out = {}
    for day_set, size_field in DAY_SETS.items():
        count = getattr(config, size_field)
        if count != 0:
            pool = VALIDATION_DAYS if day_set == DaySet.VALIDATION else TEST_DAYS
            out[day_set] = spread_days(pool, count)
    return out


def spread_days(days: typing.Sequence[int], count: int | None) -> tuple[int, ...]:
    """``count`` of ``days`` evenly spread over the sequence (all of them for ``None``)."""
    if count is None or count >= len(days):
        return tuple(days)
    step = len(days) / count
    return tuple(days[int(k * step)] for k in range(count))


def _check_int(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name}={value!r} must be an integer >= {low}")
