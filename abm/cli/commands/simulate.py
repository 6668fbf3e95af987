"""``p2pvar simulate``: run the multi-market in-process (Mesa backend)."""

from __future__ import annotations

import argparse

from abm.cli.args import add_config_args, config_from_args
from abm.cli.commands.output import add_out_args, emit
from abm.config import SimConfig


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``simulate`` subcommand."""
    parser = sub.add_parser(
        "simulate",
        help="run the P2P + Var multi-market in-process (Mesa) and write result tables",
        description="Simulate the multi-market on a feeder with every prosumer and the DSO "
        "as Mesa agents exchanging messages; print a summary and write tables to --out.",
    )
    add_config_args(parser, SimConfig)
    add_out_args(parser, required=False)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the simulation and print its summary."""
    return simulate_and_report(config_from_args(SimConfig, args), args)


def simulate_and_report(config: SimConfig, args: argparse.Namespace) -> int:
    """Simulate ``config``, write its results to ``args.out`` (if given, guarded by
    ``args.overwrite``) and print its summary (``args.json``, ``args.no_progress``)."""
    from abm.output.out_dir import prepare_out_dir
    from abm.sim.simulation import run_simulation

    if args.out is not None:
        prepare_out_dir(args.out, args.overwrite)
    result = run_simulation(config, args.out, progress=not args.no_progress)
    title = (
        f"{config.network}, market={config.market}, protocol={config.protocol}, "
        f"policy={config.policy}, {config.days} day(s), seed={config.seed}"
    )
    emit(result.summary, args.json, title=title)
    if args.out is not None and not args.json:
        print(f"results written to {args.out}")
    return 0
