"""``p2pvar evaluate``: run the market with a trained checkpoint's actors (no torch needed)."""

from __future__ import annotations

import argparse
from pathlib import Path

from abm.cli.args import add_config_args, config_from_args
from abm.cli.commands.output import add_out_args
from abm.config import DaySet, SimConfig


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` subcommand."""
    parser = sub.add_parser(
        "evaluate",
        help="run the market with a trained checkpoint's actors and write simulate's tables",
        description="Simulate the market (as `simulate --policy checkpoint:DIR`) with every "
        "prosumer acting with its own actor file DIR/actors/<id>.npz, on all days of a day "
        "set by default; print the summary and write the same tables as simulate to --out. "
        "The market must be the one the team was trained on (the run's config.json): "
        "another network, market mode, scenario, fairness, Var pricing, network charge or "
        "envelope rule is refused.",
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        required=True,
        help="a training run's folder (or its actors/ folder)",
    )
    parser.add_argument(
        "--days",
        dest="day_set",
        choices=[str(d) for d in DaySet],
        default=DaySet.TEST.value,
        help="day set to evaluate on (default: test, the held-out days)",
    )
    parser.add_argument(
        "--n-days",
        dest="days",
        type=int,
        default=None,
        help="number of days from --first-day (default: the rest of the day set)",
    )
    add_config_args(parser, SimConfig, exclude=frozenset({"policy", "days", "day_set"}))
    add_out_args(parser, required=False)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate the checkpoint and print its summary."""
    from abm.cli.commands.simulate import simulate_and_report
    from abm.inputs.run_inputs import day_set_days
    from abm.training.train_config import check_trained_market

    args.policy = f"checkpoint:{args.checkpoint}"
    if args.days is None:
        args.days = max(len(day_set_days(args.day_set)) - args.first_day, 1)
    config = config_from_args(SimConfig, args)
    check_trained_market(args.checkpoint, config)
    return simulate_and_report(config, args)
