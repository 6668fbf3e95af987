"""``p2pvar optimum``: the perfect-foresight optimum, settled by the real market."""

from __future__ import annotations

import argparse

from abm.cli.args import add_config_args, config_from_args
from abm.cli.commands.output import add_out_args, emit
from abm.config import SimConfig
from abm.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``optimum`` subcommand."""
    parser = sub.add_parser(
        "optimum",
        help="the perfect-foresight optimum of all prosumers together, settled by the market",
        description="Solve one linear program per day over every prosumer and interval "
        "(envelopes, inverters, batteries, tariffs, P2P network charge, Var by the loss "
        "sensitivities; docs/optimum.md), then play its dispatch through the real market "
        "(policy 'optimum') and write the same tables as simulate, plus optimum.csv (the "
        "dispatch) and optimum_days.csv (each day's LP).",
    )
    add_config_args(parser, SimConfig)
    for action in parser._actions:
        if action.dest == "policy":  # always the optimum here
            action.help, action.default = argparse.SUPPRESS, "optimum"
    add_out_args(parser, required=False)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Solve the optimum, settle it in the market and print the summary."""
    from abm.inputs.run_inputs import build_run_inputs
    from abm.optimum.lp import dispatch_tables, optimise_run, replay_policies
    from abm.output.out_dir import prepare_out_dir
    from abm.output.results import write_tables
    from abm.sim.simulation import run_simulation

    if args.policy != "optimum":
        raise ConfigError(f"policy={args.policy!r}: p2pvar optimum always plays the optimum")
    config = config_from_args(SimConfig, args)
    if args.out is not None:
        prepare_out_dir(args.out, args.overwrite)
    world = build_run_inputs(config)
    dispatch = optimise_run(world)
    policies = dict(zip(world.prosumer_ids, replay_policies(world, dispatch), strict=True))
    result = run_simulation(
        config, args.out, progress=not args.no_progress, world=world, policies=policies
    )
    tables = dispatch_tables(world, dispatch)
    days = tables["optimum_days"]
    summary = {
        **result.summary,
        "lp_cost_eur": float(days["lp_cost_eur"].sum()),
        "lp_publish_s": float(days["publish_s"].sum()),
        "lp_solve_s": float(days["solve_s"].sum()),
    }
    if args.out is not None:
        write_tables(args.out, tables)
    title = (
        f"{config.network}, market={config.market}, protocol={config.protocol}, "
        f"policy=optimum, {config.days} day(s), seed={config.seed}"
    )
    emit(summary, args.json, title=title)
    if args.out is not None and not args.json:
        print(f"results written to {args.out}")
    return 0
