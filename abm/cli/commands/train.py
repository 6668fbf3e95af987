"""``p2pvar train``: train a learner on the vectorised market (needs the ``train`` extra)."""

from __future__ import annotations

import argparse
from collections.abc import Collection
from typing import Any

from abm.cli.args import add_config_args, config_from_args
from abm.cli.commands.output import add_out_args, emit
from abm.training.train_config import TrainRunConfig


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``train`` subcommand."""
    parser = sub.add_parser(
        "train",
        help="train EA-MATD3, MATD3, MADDPG or ITD3 prosumers on the vectorised market",
        description="Train a learner on the batched market of --network and --market; write "
        "OUT/metrics.csv, TensorBoard logs (OUT/tensorboard), the checkpoint "
        "(OUT/checkpoint.pt), one actor file per prosumer (OUT/actors/<id>.npz, for "
        "--policy checkpoint:OUT), the run's config (OUT/config.json) and its summary "
        "(OUT/summary.json: the team, rule and ToU policies on every held-out day, the "
        "learning curve). The defaults are the default budget of docs/ea-matd3.md (the "
        "committed ieee33 multi checkpoint's run). The run stops at "
        "the first of --iterations, --env-steps and --minutes. Needs torch: "
        "pip install -e '.[train]'.",
    )
    add_run_args(parser, TrainRunConfig)
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its last checkpoint (same settings; only "
        "--iterations, --minutes and --env-steps may change)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run)


def add_run_args(
    parser: argparse.ArgumentParser, config_class: type, exclude: Collection[str] = ()
) -> None:
    """The flags of a training run: ``config_class``'s (but ``exclude``), ``--out``,
    ``--json`` and ``--no-summary``."""
    add_config_args(parser, config_class, exclude)
    add_out_args(parser, required=True)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument(
        "--no-summary",
        action="store_true",
        help="skip OUT/summary.json (held-out results of the team, rule and ToU policies)",
    )


def run(args: argparse.Namespace) -> int:
    """Train (or resume) and print a summary of the run."""
    from abm.training.train_run import train_run

    config = config_from_args(TrainRunConfig, args)
    result = train_run(
        config,
        args.out,
        resume=args.resume,
        overwrite=args.overwrite,
        progress=not args.no_progress,
        summary=not args.no_summary,
    )
    print_result(config, result, args)
    return 0


def print_result(config: TrainRunConfig, result: dict[str, Any], args: argparse.Namespace) -> None:
    """Print the figures of the run of ``config`` (``--json``: as JSON) and where it wrote."""
    title = f"{config.algo} on {config.sim.network}, market={config.sim.market}, seed={config.seed}"
    emit(result, args.json, title=title)
    if not args.json:
        print(f"results written to {args.out}")
