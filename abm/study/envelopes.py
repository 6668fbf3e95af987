"""``study envelopes``: dynamic operating envelopes against a static export cap (and no
limit at all) over a sweep of PV penetration.

Every run uses the base config (market mode ``multi`` by default) with ``pv_scale`` and the
envelope rule set. Sizes: ``--quick`` PV scales 0.25-3 (6 points) on the sunniest held-out
day; full 0.25-4 (16 points) on 14 held-out summer days. Outputs: ``sweep.csv``/``.md``
(one row per rule and PV scale: PV available, exported and curtailed, voltage violations,
DSO net benefit, prosumers' cost), ``hosting_capacity.csv``/``.md`` (per rule, strict and
with the curtailment tolerance) and ``hosting_capacity.png``.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from abm.cli.args import add_config_args, config_from_args
from abm.config import SimConfig
from abm.study.executor import RunSpec
from abm.study.runs import Study, choice_list, run_row, write_table
from dso.doe import EnvelopeRule

if TYPE_CHECKING:
    import pandas as pd


NAME = "envelopes"
QUICK_SCALES = (0.25, 0.5, 1.0, 1.5, 2.0, 3.0)
FULL_SCALES = tuple(0.25 * k for k in range(1, 17))
#: The sunniest held-out day (index 28 of the test days, calendar day 144), and 14 summer days.
QUICK_FIRST_DAY, QUICK_DAYS = 28, 1
FULL_FIRST_DAY, FULL_DAYS = 20, 14
DEFAULT_TOLERANCE_PCT = 5.0
SWEEP_COLUMNS = (
    "envelopes",
    "pv_scale",
    "pv_penetration",
    "pv_kwp",
    "pv_available_kwh",
    "pv_exported_kwh",
    "pv_curtailed_kwh",
    "pv_curtailed_pct",
    "voltage_violations",
    "envelope_violations",
    "vmax_pu",
    "vmin_pu",
    "network_loss_kwh",
    "welfare_dso_eur",
    "prosumer_cost_eur",
    "welfare_total_eur",
)


def add_args(parser: argparse.ArgumentParser) -> None:
    """Base config flags (not the swept ones), the scales and the curtailment tolerance."""
    add_config_args(parser, SimConfig, exclude=("pv_scale", "envelopes"))
    parser.set_defaults(days=None, first_day=None)
    parser.add_argument(
        "--scales", default=None, help="comma-separated PV scales (default: by size)"
    )
    parser.add_argument(
        "--rules",
        default=",".join(EnvelopeRule),
        help=f"envelope rules to compare (default: {','.join(EnvelopeRule)})",
    )
    parser.add_argument(
        "--curtailment-tolerance-pct",
        type=float,
        default=DEFAULT_TOLERANCE_PCT,
        help="curtailment (%% of available PV) a hosting capacity tolerates, besides the "
        f"strict 0 %% (default: {DEFAULT_TOLERANCE_PCT})",
    )


def parse_floats(text: str, name: str) -> tuple[float, ...]:
    """Comma-separated non-negative numbers; :class:`ConfigError` naming ``name`` otherwise."""
    from abm.errors import ConfigError

    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"{name}={text!r} must be comma-separated numbers") from None
    if not values or any(not v >= 0 for v in values):
        raise ConfigError(f"{name}={text!r} must be one or more numbers >= 0")
    return values


def specs(args: argparse.Namespace) -> list[RunSpec]:
    """One run per envelope rule and PV scale."""
    quick = args.quick
    sizes = {
        "days": QUICK_DAYS if quick else FULL_DAYS,
        "first_day": QUICK_FIRST_DAY if quick else FULL_FIRST_DAY,
    }
    chosen = {k: v if getattr(args, k) is None else getattr(args, k) for k, v in sizes.items()}
    base = config_from_args(SimConfig, argparse.Namespace(**{**vars(args), **chosen}))
    scales = (
        parse_floats(args.scales, "scales")
        if args.scales
        else (QUICK_SCALES if quick else FULL_SCALES)
    )
    rules = choice_list(EnvelopeRule, "rules", args.rules)
    return [
        RunSpec(
            f"{rule}-pv{scale:g}",
            dataclasses.replace(base, envelopes=rule, pv_scale=scale),
            labels={"envelopes": str(rule), "pv_scale": scale},
        )
        for rule in rules
        for scale in dict.fromkeys(scales)
    ]


def sweep_table(out: Path, runs: Sequence[RunSpec]) -> pd.DataFrame:
    """One row per run with the sweep's columns."""
    import pandas as pd

    frame = pd.DataFrame([run_row(out, s) for s in runs])
    available = frame["pv_available_kwh"]
    frame["pv_curtailed_pct"] = (100.0 * frame["pv_curtailed_kwh"] / available).where(
        available > 0, 0.0
    )
    frame["pv_exported_mwh"] = frame["pv_exported_kwh"] / 1000.0
    return frame


def analyse(out: Path, runs: Sequence[RunSpec], args: argparse.Namespace) -> list[Path]:
    """The sweep and hosting capacity tables and the hosting capacity curves (a share of
    curtailment up to ``--curtailment-tolerance-pct`` tolerated beside none)."""
    tolerance_pct = args.curtailment_tolerance_pct
    import pandas as pd

    from analysis.studies import hosting_capacity
    from analysis.study_plots import plot_hosting_curves

    frame = sweep_table(out, runs)
    outputs = write_table(frame[list(SWEEP_COLUMNS)], out, "sweep", index=False)
    strict = hosting_capacity(frame, by="envelopes")
    tolerant = hosting_capacity(frame, by="envelopes", curtailment_tolerance_pct=tolerance_pct)
    capacity = pd.concat(
        {"0": strict, f"{tolerance_pct:g}": tolerant}, names=["curtailment_tolerance_pct"]
    ).swaplevel()
    outputs += write_table(capacity.sort_index(), out, "hosting_capacity")
    outputs.append(plot_hosting_curves(frame, "envelopes", out / "hosting_capacity.png"))
    print(outputs[3].read_text())
    return outputs


#: The study, as :data:`abm.study.registry.STUDIES` lists it.
STUDY = Study(
    NAME,
    "dynamic envelopes vs a static export cap: hosting capacity",
    add_args,
    specs,
    analyse,
    __doc__,
)
