"""``study interdependence``: does each market change the other? One-at-a-time sweeps of the
Var price scale, the PV scale and the P2P network charge in the ``multi`` market, with the
dynamic envelopes and with none; at the default point also the ``p2p`` and ``var`` markets
alone (P2P volume without Var prices, Var volume without P2P trading).

Sizes: ``--quick`` 3 points per sweep on the sunniest held-out day; full 5-6 points per
sweep on 7 held-out summer days. Outputs: ``sweeps.csv``/``.md`` (one row per sweep point
and envelope rule: P2P volume, Var volume, loss, costs), ``slopes.csv``/``.md`` (each
metric's slope and relative range over each sweep), ``single_markets.csv``/``.md`` (multi
against p2p and var alone at the default point) and ``sweeps.png``.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from abm.cli.args import add_config_args, config_from_args
from abm.config import Market, SimConfig
from abm.study.envelopes import FULL_FIRST_DAY, QUICK_DAYS, QUICK_FIRST_DAY
from abm.study.executor import RunSpec
from abm.study.runs import Study, choice_list, run_row, write_table
from dso.doe import EnvelopeRule

if TYPE_CHECKING:
    import pandas as pd


NAME = "interdependence"
FULL_DAYS = 7
#: The swept fields, their axis labels and their points (quick, full).
SWEEPS: dict[str, tuple[str, tuple[float, ...], tuple[float, ...]]] = {
    "var_price_scale": ("Var price scale (x loss-sensitivity price)", (0.0, 1.0, 4.0),
                        (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)),
    "pv_scale": ("PV scale (x default kWp)", (0.5, 1.0, 2.0), (0.5, 1.0, 1.5, 2.0, 3.0)),
    "network_charge_eur_per_kwh": ("P2P network charge (EUR/kWh)", (0.0, 0.03, 0.1),
                                   (0.0, 0.015, 0.03, 0.06, 0.1, 0.2)),
}  # fmt: skip
RULES = (EnvelopeRule.DYNAMIC, EnvelopeRule.NONE)
METRICS = (
    ("p2p_volume_kwh", "P2P volume (kWh)"),
    ("var_volume_kvarh", "Var service (kvarh)"),
    ("network_loss_kwh", "network loss (kWh)"),
    ("prosumer_cost_eur", "prosumers' cost (EUR)"),
)
TABLE_COLUMNS = (
    "sweep", "value", "envelopes", "market", "p2p_volume_kwh", "p2p_trades", "var_volume_kvarh",
    "network_loss_kwh", "loss_saved_kwh", "prosumer_cost_eur", "var_revenue_eur",
    "network_charge_eur", "welfare_dso_eur", "voltage_violations", "pv_curtailed_kwh",
)  # fmt: skip


def add_args(parser: argparse.ArgumentParser) -> None:
    """Base config flags except the swept ones, the market and the envelope rule."""
    add_config_args(parser, SimConfig, exclude=(*SWEEPS, "market", "envelopes"))
    parser.set_defaults(days=None, first_day=None)
    default = ",".join(RULES)
    parser.add_argument(
        "--rules", default=default, help=f"envelope rules to compare (default: {default})"
    )


def _name(config: SimConfig) -> str:
    return (
        f"{config.envelopes}-{config.market}-vps{config.var_price_scale:g}"
        f"-pv{config.pv_scale:g}-nc{config.network_charge_eur_per_kwh:g}"
    )


def base_config(args: argparse.Namespace) -> SimConfig:
    """The default point of every sweep (days by size unless given)."""
    sizes = {
        "days": QUICK_DAYS if args.quick else FULL_DAYS,
        "first_day": QUICK_FIRST_DAY if args.quick else FULL_FIRST_DAY,
    }
    chosen = {k: v if getattr(args, k) is None else getattr(args, k) for k, v in sizes.items()}
    return config_from_args(SimConfig, argparse.Namespace(**{**vars(args), **chosen}))


def specs(args: argparse.Namespace) -> list[RunSpec]:
    """The sweep points (shared default points run once) and the single-market references."""
    quick = args.quick
    base = base_config(args)
    configs: list[SimConfig] = []
    for rule in choice_list(EnvelopeRule, "rules", args.rules):
        at_rule = dataclasses.replace(base, envelopes=rule, market=Market.MULTI)
        for field, (_, quick_points, full_points) in SWEEPS.items():
            for value in quick_points if quick else full_points:
                configs.append(dataclasses.replace(at_rule, **{field: value}))  # type: ignore[arg-type]
        for market in (Market.P2P, Market.VAR):
            configs.append(dataclasses.replace(at_rule, market=market))
    unique = {_name(c): c for c in configs}
    return [RunSpec(name, config) for name, config in unique.items()]


def sweep_rows(out: Path, runs: Sequence[RunSpec], base: SimConfig) -> pd.DataFrame:
    """One row per sweep point: runs of ``multi`` whose other swept fields are at the base."""
    import pandas as pd

    rows = []
    for spec in runs:
        c = spec.sim()
        if c.market != Market.MULTI:
            continue
        off = [f for f in SWEEPS if getattr(c, f) != getattr(base, f)]
        swept = off or list(SWEEPS)  # the base point belongs to every sweep
        if len(swept) > 1 and off:
            continue
        row = run_row(out, spec)
        for field in swept:
            rows.append({**row, "sweep": field, "value": getattr(c, field),
                         field: getattr(c, field), "envelopes": str(c.envelopes),
                         "market": str(c.market)})  # fmt: skip
    return pd.DataFrame(rows)


def analyse(out: Path, runs: Sequence[RunSpec], args: argparse.Namespace) -> list[Path]:
    """The sweep, slope and single-market tables and the sweep plot."""
    base = base_config(args)
    import pandas as pd

    from analysis.studies import sweep_slopes
    from analysis.study_plots import plot_sweeps

    frame = sweep_rows(out, runs, base)
    outputs = write_table(
        frame[list(TABLE_COLUMNS)].sort_values(["sweep", "envelopes", "value"]),
        out, "sweeps", index=False,
    )  # fmt: skip
    slopes = pd.concat(
        [
            sweep_slopes(
                frame[frame["sweep"] == field], x="value",
                metrics=[m for m, _ in METRICS], by=["sweep", "envelopes"],
            )
            for field in SWEEPS
        ]
    )  # fmt: skip
    outputs += write_table(slopes, out, "slopes", index=False)
    singles = []
    for spec in runs:
        c = spec.sim()
        if all(getattr(c, f) == getattr(base, f) for f in SWEEPS):
            row = run_row(out, spec)
            singles.append({"envelopes": str(c.envelopes), "market": str(c.market),
                            **{k: row[k] for k, _ in METRICS}})  # fmt: skip
    single = pd.DataFrame(singles).sort_values(["envelopes", "market"])
    outputs += write_table(single, out, "single_markets", index=False)
    sweeps = [(field, label) for field, (label, _, _) in SWEEPS.items()]
    outputs.append(plot_sweeps(frame, sweeps, METRICS, "envelopes", out / "sweeps.png"))
    print(outputs[3].read_text())
    print(outputs[5].read_text())
    return outputs


#: The study, as :data:`abm.study.registry.STUDIES` lists it.
STUDY = Study(
    NAME, "sweeps: how the P2P and Var markets interact", add_args, specs, analyse, __doc__
)
