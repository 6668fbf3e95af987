"""``p2pvar train``: train a learner on the vectorised market (needs the ``train`` extra)."""

from __future__ import annotations

import argparse
from pathlib import Path

from abm.cli_args import add_config_args, config_from_args
from abm.commands.output import add_out_args, emit
from abm.errors import ConfigError
from abm.training.train_config import TrainRunConfig, check_resumable


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``train`` subcommand."""
    parser = sub.add_parser(
        "train",
        help="train EA-MATD3, MATD3, MADDPG or ITD3 prosumers on the vectorised market",
        description="Train a learner on the batched market of --network and --market; write "
        "OUT/metrics.csv, TensorBoard logs (OUT/tensorboard), the checkpoint "
        "(OUT/checkpoint.pt), one actor file per prosumer (OUT/actors/<id>.npz, for "
        "--policy checkpoint:OUT) and the run's config (OUT/config.json). The run stops at "
        "the first of --iterations, --env-steps and --minutes. Needs torch: "
        "pip install -e '.[train]'.",
    )
    add_config_args(parser, TrainRunConfig)
    add_out_args(parser, required=True)
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its last checkpoint (same settings; only "
        "--iterations, --minutes and --env-steps may change)",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train (or resume) and print a summary of the run."""
    from abm.out_dir import prepare_out_dir
    from abm.provenance import write_run_config
    from abm.training.train_run import learner_config, run_training

    config = config_from_args(TrainRunConfig, args)
    out: Path = args.out
    if args.resume and args.overwrite:
        raise ConfigError("--resume and --overwrite exclude each other")
    learner = learner_config(config)  # imports torch: refused here without the extra
    if args.resume:
        _check_resume(out, config)
    else:
        prepare_out_dir(out, args.overwrite)
    write_run_config(out, config, config.seed, command="train", learner=learner)
    rows = run_training(config, learner, out, resume=args.resume, progress=not args.no_progress)
    evaluated = [row for row in rows if "eval_cost" in row]
    summary = {
        "iterations": int(rows[-1]["iteration"]) if rows else 0,
        "env_steps": int(rows[-1]["env_steps"]) if rows else 0,
        "train_s": sum(row["wall_s"] for row in rows),
        "eval_cost": evaluated[-1]["eval_cost"] if evaluated else float("nan"),
    }
    title = f"{config.algo} on {config.network}, market={config.market}, seed={config.seed}"
    emit(summary, args.json, title=title)
    if not args.json:
        print(f"results written to {out}")
    return 0


def _check_resume(out: Path, config: TrainRunConfig) -> None:
    """Refuse ``--resume`` of a folder without a checkpoint or with other settings."""
    from abm.jsonfile import json_object, read_json

    config_path = out / "config.json"
    for path in (out / "checkpoint.pt", config_path):
        if not path.is_file():
            raise ConfigError(f"--resume: {path} not found (no run to resume in --out {out})")
    doc = json_object(read_json(config_path, "--resume:", ConfigError), str(config_path))
    saved = json_object(doc.get("config"), f"{config_path}: config")
    check_resumable(dict(saved), config, str(config_path))
