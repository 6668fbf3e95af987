"""``study markets``: every market mode under each policy on the same held-out days.

Sizes: ``--quick`` one day; full 73 days (every held-out test day). Outputs:
``comparison.csv``/``.md`` (one row per policy and market: costs, welfare by actor, loss,
voltage range, P2P and Var volumes, changes against the policy's grid-only run and, when
``optimum`` is among the policies, each row's share of the optimum's savings over grid-only
and, with ``tou`` among them too, its share of the ToU-to-optimum gap closed, ``gap_closed``),
``market_changes.png`` and ``daily_profiles.png`` (the first policy's modes).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path

from abm.cli.args import add_config_args, config_from_args
from abm.config import Market, SimConfig
from abm.errors import ConfigError
from abm.study.executor import RunSpec, run_dir_of
from abm.study.runs import Study, write_table
from agents.policy_registry import parse_policy

NAME = "markets"
QUICK_DAYS = 1
FULL_DAYS = 73
DEFAULT_POLICIES = "rule,tou,optimum"


def add_args(parser: argparse.ArgumentParser) -> None:
    """Flags of the base config (days default to the size) and ``--policies``."""
    add_config_args(parser, SimConfig, exclude=("market", "policy"))
    parser.set_defaults(days=None)
    parser.add_argument(
        "--policies",
        default=DEFAULT_POLICIES,
        help="comma-separated policies: rule, random, tou, optimum, mpc, mpc:FORECASTER, "
        "mpc-perfect, checkpoint:DIR "
        f"(default: {DEFAULT_POLICIES})",
    )


def policy_label(policy: str) -> str:
    """A folder-safe label of a policy (``NAME:ARG`` -> ``NAME-<ARG's last name>``, e.g.
    ``checkpoint:DIR`` -> ``checkpoint-<DIR name>``; ``module:factory`` with ``_``)."""
    name, _, arg = policy.partition(":")
    if arg and parse_policy(policy, ConfigError).kind.argument:
        return f"{name}-" + re.sub(r"[^A-Za-z0-9._-]", "_", Path(arg).name or "root")
    return re.sub(r"[^A-Za-z0-9._-]", "_", policy)


def specs(args: argparse.Namespace) -> list[RunSpec]:
    """One run per policy and market mode."""
    days = args.days if args.days is not None else (QUICK_DAYS if args.quick else FULL_DAYS)
    base = config_from_args(SimConfig, argparse.Namespace(**{**vars(args), "days": days}))
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    for policy in policies:
        parse_policy(policy, ConfigError)
    if not policies:
        raise ConfigError(f"policies={args.policies!r} must name at least one policy")
    return [
        RunSpec(
            f"{policy_label(policy)}-{market}",
            dataclasses.replace(base, policy=policy, market=market),
            labels={"policy": policy, "market": str(market)},
        )
        for policy in dict.fromkeys(policies)
        for market in Market
    ]


def analyse(out: Path, runs: Sequence[RunSpec], args: argparse.Namespace) -> list[Path]:
    """The comparison table and plots, the table printed (:func:`compare_markets`)."""
    return compare_markets(out, runs)


def compare_markets(out: Path, runs: Sequence[RunSpec], echo: bool = True) -> list[Path]:
    """The comparison table and plots (``echo``: print the table)."""
    import pandas as pd

    from analysis.compare import compare_runs
    from analysis.plots import plot_daily_profiles
    from analysis.study_plots import plot_market_changes

    policies = list(dict.fromkeys(s.labels["policy"] for s in runs))
    by_policy = {
        policy: {
            s.labels["market"]: run_dir_of(out, s) for s in runs if s.labels["policy"] == policy
        }
        for policy in policies
    }
    optimum_runs = by_policy.get("optimum")
    frames = {
        policy: compare_runs(
            dirs,
            baseline=Market.GRID_ONLY,
            optimum_runs=optimum_runs,
            tou_runs=by_policy.get("tou") if optimum_runs else None,
        )
        for policy, dirs in by_policy.items()
    }
    comparison = pd.concat(frames, names=["policy", "market"])
    outputs = write_table(comparison, out, "comparison")
    outputs.append(plot_market_changes(comparison, out / "market_changes.png"))
    outputs.append(plot_daily_profiles(by_policy[policies[0]], out / "daily_profiles.png"))
    if echo:
        print(outputs[1].read_text())
    return outputs


#: The study, as :data:`abm.study.registry.STUDIES` lists it.
STUDY = Study(
    NAME,
    "every market mode under each policy: value of P2P, Var and both",
    add_args,
    specs,
    analyse,
    __doc__,
)
