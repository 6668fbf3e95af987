"""``p2pvar study markets``: run every market mode and compare them (table and plots)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from abm.cli_args import add_config_args, config_from_args
from abm.commands.output import add_out_args
from abm.config import Market, PolicyName, SimConfig
from abm.provenance import write_run_config


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``study`` and its case studies."""
    parser = sub.add_parser("study", help="case studies that run and compare several simulations")
    studies = parser.add_subparsers(dest="study", metavar="STUDY", required=True)
    markets = studies.add_parser(
        "markets",
        help="every market mode on the same days: value of P2P, Var and both",
        description="Run grid-only, p2p, var and multi with the same network, policy, protocol, "
        "days and seed; write each run's tables to OUT/<mode>/, the perfect-foresight "
        "optimum's (p2pvar optimum) to OUT/optimum-<mode>/, the comparison table (with each "
        "mode's share of the optimum's savings over grid-only) to OUT/comparison.csv (and "
        ".md) and plots to OUT/*.png.",
    )
    add_config_args(markets, SimConfig)
    add_out_args(markets, required=True)
    markets.add_argument(
        "--no-optimum",
        action="store_true",
        help="skip the optimum's runs (and the share of its savings)",
    )
    markets.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    markets.set_defaults(func=run_markets)


def run_markets(args: argparse.Namespace) -> int:
    """Run the four market modes and write the comparison."""
    from abm.out_dir import prepare_out_dir
    from abm.simulation import run_simulation
    from analysis.compare import compare_runs, to_markdown
    from analysis.plots import plot_comparison, plot_daily_profiles

    base = config_from_args(SimConfig, args)
    study_modes = (*Market, *(optimum_folder(m) for m in Market))
    out: Path = prepare_out_dir(args.out, args.overwrite, study_modes=study_modes)
    runs: dict[str, Path] = {}
    optimum_runs: dict[str, Path] | None = None if args.no_optimum else {}
    for market in Market:
        config = dataclasses.replace(base, market=market)
        if not args.no_progress:
            print(f"running {market} ...", flush=True)
        run_simulation(config, out / market, progress=not args.no_progress)
        runs[market] = out / market
        if optimum_runs is not None:
            optimum = dataclasses.replace(config, policy=PolicyName.OPTIMUM)
            if base.policy == PolicyName.OPTIMUM:
                optimum_runs[market] = out / market
            else:
                if not args.no_progress:
                    print(f"running {market} with the optimum ...", flush=True)
                run_simulation(optimum, out / optimum_folder(market), progress=not args.no_progress)
                optimum_runs[market] = out / optimum_folder(market)
    comparison = compare_runs(runs, baseline="grid-only", optimum_runs=optimum_runs)
    all_runs = {**runs, **{optimum_folder(k): v for k, v in (optimum_runs or {}).items()}}
    write_run_config(
        out, base, base.seed, study="markets", runs={k: str(v) for k, v in all_runs.items()}
    )
    comparison.to_csv(out / "comparison.csv")
    table = to_markdown(comparison)
    (out / "comparison.md").write_text(table + "\n")
    plot_comparison(comparison, out / "comparison.png")
    plot_daily_profiles(runs, out / "daily_profiles.png")
    print(table)
    print(f"tables and plots written to {out}")
    return 0


def optimum_folder(market: str) -> str:
    """The study's folder of the optimum's run in ``market``."""
    return f"optimum-{market}"
