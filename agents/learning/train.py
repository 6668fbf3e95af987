"""The training loop shared by every learner: iterate, evaluate, log, checkpoint, resume.

An iteration is one batched rollout (one day in every world) plus the learner's updates;
for EA-MATD3 it is one generation. Every ``eval_every`` iterations the current policy
(EA-MATD3: the champion) plays all validation days (``env.val_days``, carved from the
training days) without noise; the team with the lowest validation cost so far is the
*selected* team, the one exported. The test days are never read here. Every
``checkpoint_every`` iterations and at the end, ``checkpoint.pt`` and ``metrics.csv`` are
written; with the replay buffer in the checkpoint, resuming gives exactly the run that
was not interrupted (same seed, same numbers). Every row of metrics also goes to
TensorBoard (``tensorboard/``) if asked. The run ends after ``iterations`` or, earlier, at
the first iteration that brings the training time to ``max_wall_s``. At the end each
prosumer's actor of the selected team is exported to ``actors/<prosumer_id>.npz``.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tqdm import tqdm

from agents.interval import EPISODE_INTERVALS
from agents.learners import LearnerConfig, learner_class
from agents.learning import INSTALL_TRAIN
from agents.learning.checkpoint import (
    RunIdentity,
    Selected,
    export_actors,
    load_checkpoint,
    save_checkpoint,
)
from agents.learning.env_protocol import EnvDims, VecMarketEnv
from agents.learning.errors import LearningConfigError, LearningError
from agents.learning.networks import Params
from agents.learning.rollout import evaluate_cost
from agents.learning.seeding import seeded_generator

#: Columns of ``metrics.csv`` (empty where an iteration has no value, e.g. no update yet).
METRIC_COLUMNS = (
    "iteration",
    "env_steps",
    "episode_return",
    "val_cost",
    "critic_loss",
    "actor_loss",
    "fitness_best",
    "fitness_mean",
    "diversity",
    "coverage",
    "wall_s",
)


class Algorithm(Protocol):
    """What the loop needs of a learner."""

    name: str
    actor_hidden: tuple[int, ...]
    """Hidden widths of each prosumer's actor."""

    def iterate(self, env: VecMarketEnv) -> dict[str, float]:
        """One rollout (or generation) and its updates; returns metrics."""
        ...

    def policy_team(self) -> Params:
        """The policy to evaluate and export, as a team ``[1, N, ...]``."""
        ...

    def start_from(self, actor: Params) -> None:
        """Start every actor from copies of one actor's parameters (a behaviour clone)."""
        ...

    def state_dict(self, *, include_buffer: bool) -> dict[str, Any]:
        """Everything needed to resume."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        ...


def make_algorithm(
    name: str, env: VecMarketEnv, seed: int, config: LearnerConfig | None = None
) -> Algorithm:
    """The learner ``name`` (a key of :data:`agents.learners.LEARNERS`) seeded with ``seed``,
    with ``config`` (an instance of its ``config_class``) or its defaults."""
    cls = learner_class(name, LearningConfigError)
    default = cls.config_class()
    if config is not None and type(config) is not type(default):
        raise LearningConfigError(
            f"algo = {name!r}: config is a {type(config).__name__}, "
            f"expected a {type(default).__name__}"
        )
    algorithm: Algorithm = cls(EnvDims.of(env), config or default, seeded_generator(seed))
    return algorithm


@dataclass(frozen=True)
class TrainConfig:
    """Budget and bookkeeping of a training run."""

    iterations: int
    """Rollouts (EA-MATD3: generations) to run in total, resumed ones included."""
    eval_every: int = 5
    """Evaluate on the validation days every this many iterations (and at the end)."""
    checkpoint_every: int = 5
    """Write checkpoint and metrics every this many iterations (and at the end)."""
    checkpoint_buffer: bool = True
    """Store the replay buffer in the checkpoint (needed for an exact resume)."""
    eval_seed: int = 0
    """Environment seed of every evaluation (the same episodes each time)."""
    progress: bool = True
    """Show a progress bar."""
    max_wall_s: float | None = None
    """Stop after the iteration that brings the training time (sum of the rows' ``wall_s``,
    resumed runs included) to this many seconds, if before ``iterations``."""
    tensorboard: bool = False
    """Also log every metric to TensorBoard event files in ``out_dir/tensorboard``."""

    def __post_init__(self) -> None:
        for name in ("iterations", "eval_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise LearningConfigError(f"{name} = {getattr(self, name)}: must be >= 1")
        if self.max_wall_s is not None and not self.max_wall_s > 0:
            raise LearningConfigError(f"max_wall_s = {self.max_wall_s}: must be > 0")


def train(
    algorithm: Algorithm,
    env: VecMarketEnv,
    config: TrainConfig,
    out_dir: Path,
    *,
    resume: bool = False,
    initial: Selected | None = None,
) -> tuple[list[dict[str, float]], Params]:
    """Run (or resume from ``out_dir/checkpoint.pt``) training; return all metrics rows and
    the selected team (the lowest validation cost). ``initial``: the team the run started from
    with its validation cost (iteration 0), a candidate for selection like every evaluated
    one (a clone: exported if no later team beats it)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    identity = RunIdentity.of(algorithm.name, env)
    checkpoint_path = out_dir / "checkpoint.pt"
    rows: list[dict[str, float]] = []
    start = 0
    selected: Selected | None = initial
    if resume:
        checkpoint = load_checkpoint(checkpoint_path, identity)
        algorithm.load_state_dict(checkpoint.algorithm)
        rows, start = list(checkpoint.metrics), checkpoint.iteration
        selected = checkpoint.selected
    elapsed_s = sum(row["wall_s"] for row in rows)
    out_of_time = config.max_wall_s is not None and elapsed_s >= config.max_wall_s
    log = _tensorboard_writer(out_dir, start) if config.tensorboard else None
    bar = tqdm(
        range(start, start if out_of_time else config.iterations),
        initial=start,
        total=config.iterations,
        desc=algorithm.name,
        disable=not config.progress,
    )
    try:
        for it in bar:
            done = it + 1
            row, last = _iteration(algorithm, env, config, done, elapsed_s)
            elapsed_s += row["wall_s"]
            rows.append(row)
            if "val_cost" in row:
                bar.set_postfix(val_cost=f"{row['val_cost']:.3f}")
                if selected is None or row["val_cost"] < selected.val_cost:
                    team = [t.clone() for t in algorithm.policy_team()]
                    selected = Selected(team, row["val_cost"], done)
            if log is not None:
                for key, value in row.items():
                    if key != "iteration":
                        log.add_scalar(key, value, done)
            if done % config.checkpoint_every == 0 or last:
                state = algorithm.state_dict(include_buffer=config.checkpoint_buffer)
                save_checkpoint(checkpoint_path, identity, done, state, rows, selected)
                write_metrics(out_dir / "metrics.csv", rows)
            if last:
                break
    finally:  # also on Ctrl-C: what was logged stays
        bar.close()
        if log is not None:
            log.close()
    chosen = algorithm.policy_team() if selected is None else selected.team
    export_actors(out_dir / "actors", chosen, identity)
    return rows, chosen


def _iteration(
    algorithm: Algorithm, env: VecMarketEnv, config: TrainConfig, done: int, elapsed_s: float
) -> tuple[dict[str, float], bool]:
    """Iteration number ``done``: the algorithm's iteration and, if due, the evaluation;
    its metrics row, and whether it is the last one (the budget is spent)."""
    t0 = time.perf_counter()
    row: dict[str, float] = {
        "iteration": done,
        "env_steps": done * env.n_worlds * EPISODE_INTERVALS,
        **algorithm.iterate(env),
    }
    last = done == config.iterations or (
        config.max_wall_s is not None and elapsed_s + time.perf_counter() - t0 >= config.max_wall_s
    )
    if done % config.eval_every == 0 or last:
        row["val_cost"] = evaluate_cost(
            env, algorithm.policy_team(), env.val_days, config.eval_seed
        )
    row["wall_s"] = time.perf_counter() - t0
    return row, last


def _tensorboard_writer(out_dir: Path, start: int) -> Any:
    """A ``SummaryWriter`` on ``out_dir/tensorboard``; on resume, events an interrupted run
    logged after its last checkpoint (steps above ``start``) are discarded."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise LearningError(
            f"TensorBoard logs need the tensorboard package, which is not installed: "
            f"{INSTALL_TRAIN}"
        ) from None
    return SummaryWriter(str(out_dir / "tensorboard"), purge_step=start + 1 if start else None)


def write_metrics(path: Path, rows: list[dict[str, float]]) -> None:
    """``metrics.csv`` with :data:`METRIC_COLUMNS` (missing values left empty)."""
    with Path(path).open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=METRIC_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
