"""A training run on the vectorised market: environment, learner settings, the loop, and
:func:`train_run`, the whole run of ``p2pvar train`` (the one training path).

The learners (``agents.learning``, torch) are imported inside the functions that need them,
so this module loads without torch; calling them without it raises the learners' one-line
``LearningError`` saying which extra to install.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from abm.envs.train_env import make_env
from abm.errors import ConfigError
from abm.training.train_config import TrainRunConfig, check_resumable
from agents.interval import EPISODE_INTERVALS
from agents.learners import LearnerConfig

if TYPE_CHECKING:
    from agents.learning.networks import Params


def learner_config(config: TrainRunConfig) -> LearnerConfig:
    """The learner's settings: its config class's defaults with the run's given values
    (imports the learner, so torch: refused in one line without the extra). A setting the
    learner does not take is refused in one line."""
    config_class = config.learner_config_class()
    given = config.learner_settings()
    for name, value in given.items():
        if name not in config_class.SETTINGS:
            raise ConfigError(
                f"{name}={value!r} is not a setting of {config.algo} (its settings: "
                f"{', '.join(config_class.SETTINGS)})"
            )
    return config_class.from_settings(given, config.worlds)


def iterations_of(config: TrainRunConfig) -> int:
    """Iterations of the run: ``iterations``, or fewer if ``env_steps`` comes first."""
    if config.env_steps is None:
        return config.iterations
    per_iteration = config.worlds * EPISODE_INTERVALS
    return min(config.iterations, math.ceil(config.env_steps / per_iteration))


def run_training(
    config: TrainRunConfig,
    learner: LearnerConfig,
    out_dir: Path,
    *,
    resume: bool,
    progress: bool,
) -> tuple[list[dict[str, float]], Params]:
    """Train (or resume) into ``out_dir``: ``checkpoint.pt``, ``metrics.csv``,
    ``tensorboard/`` and ``actors/``; return the metrics rows and the exported team (the
    lowest validation cost)."""
    from agents.learning.train import TrainConfig, make_algorithm, train

    env = make_env(config)
    algorithm = make_algorithm(config.algo, env, config.seed, learner)
    start = None
    if config.init == "clone" and not resume:
        from abm.training.clone import start_from_clone

        start = start_from_clone(env, algorithm, config.seed, out_dir, progress=progress)
    loop = TrainConfig(
        iterations=iterations_of(config),
        eval_every=config.eval_every,
        checkpoint_every=config.checkpoint_every,
        checkpoint_buffer=config.checkpoint_buffer,
        progress=progress,
        max_wall_s=None if config.minutes is None else 60.0 * config.minutes,
        tensorboard=True,
    )
    return train(algorithm, env, loop, out_dir, resume=resume, initial=start)


class Trainer(Protocol):
    """A training loop of a run (:func:`run_training`'s signature): trains into ``out_dir``
    (``metrics.csv``, ``actors/``) and returns the metrics rows (``iteration``,
    ``env_steps``, ``wall_s``, ``val_cost`` where evaluated) and the exported team
    ``[1, N, ...]`` (the lowest validation cost)."""

    def __call__(
        self,
        config: TrainRunConfig,
        learner: LearnerConfig,
        out_dir: Path,
        *,
        resume: bool,
        progress: bool,
    ) -> tuple[list[dict[str, float]], Params]: ...


def train_run(
    config: TrainRunConfig,
    out_dir: Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    summary: bool = True,
    trainer: Trainer = run_training,
    command: str = "train",
) -> dict[str, Any]:
    """The run ``p2pvar train`` makes (``command``, with the training loop ``trainer``):
    check ``out_dir`` (or, with ``resume``, the run in it), write ``config.json``, train
    and, with ``summary``, write ``summary.json``
    (:func:`abm.training.run_summary.write_summary`). Returns the figures the command
    prints."""
    from abm.output.out_dir import prepare_out_dir
    from abm.output.provenance import write_run_config

    if resume and overwrite:
        raise ConfigError("--resume and --overwrite exclude each other")
    learner = learner_config(config)  # imports torch: refused here without the extra
    if resume:
        check_resume(out_dir, config)
    else:
        prepare_out_dir(out_dir, overwrite)
    write_run_config(out_dir, config, config.seed, command=command, learner=learner)
    (out_dir / "summary.json").unlink(missing_ok=True)  # a resumed run's is out of date
    rows, team = trainer(config, learner, out_dir, resume=resume, progress=progress)
    evaluated = [row for row in rows if "val_cost" in row]
    result: dict[str, Any] = {
        "iterations": int(rows[-1]["iteration"]) if rows else 0,
        "env_steps": int(rows[-1]["env_steps"]) if rows else 0,
        "train_s": sum(row["wall_s"] for row in rows),
        "val_cost": min(row["val_cost"] for row in evaluated) if evaluated else float("nan"),
    }
    if summary:
        from abm.training.run_summary import write_summary

        written = write_summary(out_dir, config, learner, rows, team)
        for days in ("validation", "test"):
            if days in written:
                result |= {
                    f"{days}_cost_eur": written[days]["policy"]["cost_eur"],
                    f"{days}_tou_cost_eur": written[days]["tou"]["cost_eur"],
                    f"{days}_dso_net_eur": written[days]["policy"]["dso_net_eur"],
                    f"{days}_voltage_violations": written[days]["policy"]["voltage_violations"],
                }
    return result


def check_resume(out: Path, config: TrainRunConfig) -> None:
    """Refuse ``--resume`` of a folder without a checkpoint or with other settings."""
    from abm.output.jsonfile import json_object, read_json

    config_path = out / "config.json"
    for path in (out / "checkpoint.pt", config_path):
        if not path.is_file():
            raise ConfigError(f"--resume: {path} not found (no run to resume in --out {out})")
    doc = json_object(read_json(config_path, "--resume:", ConfigError), str(config_path))
    saved = json_object(doc.get("config"), f"{config_path}: config")
    check_resumable(dict(saved), config, str(config_path))
