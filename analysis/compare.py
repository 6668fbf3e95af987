"""Compare finished runs (one result directory per market mode) from their tables alone."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.metrics import summarize
from analysis.tables import TABLES

#: Columns of the comparison table, in order.
COMPARISON_COLUMNS = (
    "prosumer_cost_eur",
    "retail_eur",
    "var_revenue_eur",
    "welfare_prosumers_eur",
    "welfare_dso_eur",
    "welfare_retailer_eur",
    "welfare_total_eur",
    "dso_net_min_interval_eur",
    "network_loss_kwh",
    "p2p_volume_kwh",
    "var_volume_kvarh",
    "vmin_pu",
    "vmax_pu",
    "voltage_violations",
    "pv_curtailed_kwh",
    "messages_per_interval",
)


def read_run(run_dir: Path) -> tuple[dict[str, pd.DataFrame], float]:
    """The result tables of a run directory and its interval duration in hours."""
    config = json.loads((run_dir / "config.json").read_text())
    interval_min = config["scenario"]["interval_min"]
    tables = {name: pd.read_csv(run_dir / f"{name}.csv") for name in TABLES}
    return tables, interval_min / 60.0


def share_of_optimum_savings(
    reference_cost_eur: float | np.ndarray,
    policy_cost_eur: float | np.ndarray,
    optimum_cost_eur: float | np.ndarray,
) -> float | np.ndarray:
    """The policy's share of what the perfect-foresight optimum saves over a reference
    (``grid-only`` in the studies): ``(reference - policy) / (reference - optimum)``.

    1 means the policy saves as much as the optimum, 0 nothing, < 0 it costs more than the
    reference. NaN where the optimum saves nothing (no saving to share).
    """
    reference = np.asarray(reference_cost_eur, dtype=float)
    savings = reference - np.asarray(optimum_cost_eur, dtype=float)
    gained = reference - np.asarray(policy_cost_eur, dtype=float)
    positive = savings > 0
    share = np.where(positive, gained / np.where(positive, savings, 1.0), np.nan)
    return float(share) if share.ndim == 0 else share


def gap_closed(
    tou_cost_eur: float | np.ndarray,
    policy_cost_eur: float | np.ndarray,
    optimum_cost_eur: float | np.ndarray,
) -> float | np.ndarray:
    """The share of the time-of-use rule's distance to the optimum that a policy closes,
    ``(C_tou - C_policy) / (C_tou - C_optimum)`` on the same days: 0 is ToU, 1 the optimum,
    < 0 worse than ToU (:func:`share_of_optimum_savings` with ToU as the reference)."""
    return share_of_optimum_savings(tou_cost_eur, policy_cost_eur, optimum_cost_eur)


def paired_days(
    cost_eur_per_day: Sequence[float] | np.ndarray,
    reference_eur_per_day: Sequence[float] | np.ndarray,
) -> dict[str, float]:
    """A policy's per-day costs against a reference's on the same days, paired by day: the
    mean per-day difference ``mean(cost - reference)`` (EUR/day; < 0: the policy is cheaper)
    and the two-sided Wilcoxon signed-rank p-value of the differences (``scipy.stats.wilcoxon``
    with its default method, exact for a few days without ties, else the normal
    approximation; zero differences dropped). NaN when no difference is nonzero (nothing to
    rank).
    """
    from scipy.stats import wilcoxon

    cost = np.asarray(cost_eur_per_day, dtype=float)
    reference = np.asarray(reference_eur_per_day, dtype=float)
    if cost.ndim != 1 or cost.shape != reference.shape or not len(cost):
        raise ValueError(
            f"cost_eur_per_day (shape {cost.shape}) and reference_eur_per_day (shape "
            f"{reference.shape}) must be the same days, at least one"
        )
    difference = cost - reference
    nonzero = difference[difference != 0]
    p_value = float(wilcoxon(nonzero).pvalue) if len(nonzero) else float("nan")
    return {"diff_eur_per_day": float(difference.mean()), "p_wilcoxon": p_value}


def compare_runs(
    runs: Mapping[str, Path],
    baseline: str,
    optimum_runs: Mapping[str, Path] | None = None,
    tou_runs: Mapping[str, Path] | None = None,
) -> pd.DataFrame:
    """One row per run (indexed by label) with the summary figures and changes vs ``baseline``.

    ``cost_change_pct`` and ``loss_change_pct`` are relative to the baseline run. With
    ``optimum_runs`` (the optimum's run of each label, ``p2pvar optimum``):
    ``optimum_cost_eur`` and ``share_of_optimum_savings`` (:func:`share_of_optimum_savings`
    with the baseline run's cost as the reference); with ``tou_runs`` too (the ToU rule's run
    of each label), ``gap_closed`` (:func:`gap_closed`).
    """
    rows = {}
    for label, run_dir in runs.items():
        rows[label] = {col: _summary(run_dir)[col] for col in COMPARISON_COLUMNS}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    base = frame.loc[baseline]
    frame["cost_change_pct"] = 100.0 * (frame["prosumer_cost_eur"] / base["prosumer_cost_eur"] - 1)
    frame["loss_change_pct"] = 100.0 * (frame["network_loss_kwh"] / base["network_loss_kwh"] - 1)
    if optimum_runs is not None:
        optimum = [_summary(optimum_runs[label])["prosumer_cost_eur"] for label in frame.index]
        frame["optimum_cost_eur"] = optimum
        frame["share_of_optimum_savings"] = share_of_optimum_savings(
            base["prosumer_cost_eur"], frame["prosumer_cost_eur"].to_numpy(), np.array(optimum)
        )
        if tou_runs is not None:
            tou = [_summary(tou_runs[label])["prosumer_cost_eur"] for label in frame.index]
            frame["gap_closed"] = gap_closed(
                np.array(tou), frame["prosumer_cost_eur"].to_numpy(), np.array(optimum)
            )
    frame.index.name = "market"
    return frame


def _summary(run_dir: Path) -> dict[str, float]:
    """The summary figures of a run directory, from its tables."""
    tables, duration_h = read_run(run_dir)
    return summarize(tables, duration_h)


def hourly_profile(tables: Mapping[str, pd.DataFrame], column: str, table: str) -> pd.Series:
    """Mean over days of a per-interval sum of ``column`` by hour of day (hourly runs)."""
    frame = tables[table]
    per_interval = frame.groupby("interval")[column].sum()
    return per_interval.groupby(per_interval.index % 24).mean()


def to_markdown(frame: pd.DataFrame, digits: int = 4) -> str:
    """A GitHub-flavoured markdown table of ``frame`` (index as first column)."""

    def cell(value: object) -> str:
        return f"{value:.{digits}g}" if isinstance(value, float) else str(value)

    header = [frame.index.name or "", *map(str, frame.columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, row in frame.iterrows():
        lines.append("| " + " | ".join([str(label), *map(cell, row.to_numpy())]) + " |")
    return "\n".join(lines)
