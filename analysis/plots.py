"""Plots comparing several runs: cost, welfare, loss and market volumes as labelled bars, and
daily profiles (PNG, through :mod:`analysis.figures.style`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.compare import hourly_profile, read_run
from analysis.figures.style import (
    bars_with_values,
    draw_voltage_limits,
    grouped_bars_with_values,
    new_figure,
    plot_lines,
    save,
)

#: Bar panels of :func:`plot_comparison`: comparison column -> (title, unit).
COMPARISON_PANELS = {
    "prosumer_cost_eur": ("prosumers' cost", "EUR"),
    "welfare_prosumers_eur": ("welfare: prosumers", "EUR"),
    "welfare_dso_eur": ("welfare: DSO", "EUR"),
    "welfare_retailer_eur": ("welfare: retailer", "EUR"),
    "welfare_total_eur": ("welfare: total", "EUR"),
    "network_loss_kwh": ("network loss", "kWh"),
    "p2p_volume_kwh": ("P2P volume", "kWh"),
    "var_volume_kvarh": ("Var support", "kvarh"),
}
PANELS_PER_ROW = 4


def plot_comparison(comparison: pd.DataFrame, path: Path) -> Path:
    """Bars per run (the index) of cost, welfare by actor, loss and market volumes, each
    labelled with its value; an axis does not start at 0 when that would hide differences
    (its label says so). Panels whose column the table lacks are left out.

    Runs of several policies in several markets (``policy`` and ``market`` columns or index
    levels, one run each) are drawn grouped by market, one colour per policy (one legend)."""
    panels = {c: v for c, v in COMPARISON_PANELS.items() if c in comparison.columns}
    rows = -(-len(panels) // PANELS_PER_ROW)
    fig, axes = new_figure(rows, PANELS_PER_ROW, width=3.4 * PANELS_PER_ROW, height=3.3 * rows)
    grid = policy_by_market(comparison)
    labels = [str(label) for label in comparison.index]
    colors = [f"C{i % 10}" for i in range(len(labels))]
    for ax, (column, (title, unit)) in zip(axes.flat, panels.items(), strict=False):
        if grid is None:
            bars_with_values(ax, labels, comparison[column].to_numpy(dtype=float), unit, colors)
        else:
            table = grid.pivot(index="market", columns="policy", values=column)
            table = table.reindex(index=grid["market"].unique(), columns=grid["policy"].unique())
            series = {str(p): table[p].to_numpy(dtype=float) for p in table.columns}
            grouped_bars_with_values(ax, [str(m) for m in table.index], series, unit)
        ax.set_title(title, fontsize=9)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    if grid is not None and panels:
        handles, names = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, names, loc="outside lower center", ncols=min(len(names), 4))
    return save(fig, path)


def policy_by_market(comparison: pd.DataFrame) -> pd.DataFrame | None:
    """The comparison with ``policy`` and ``market`` as columns when it holds one run per
    policy and market, of at least two of each; None otherwise."""
    frame = comparison.reset_index()
    if not {"policy", "market"} <= set(frame.columns):
        return None
    keys = frame[["policy", "market"]].astype(str)
    if keys.duplicated().any() or min(keys.nunique()) < 2:
        return None
    return frame.assign(policy=keys["policy"], market=keys["market"])


def plot_daily_profiles(runs: Mapping[str, Path], path: Path) -> Path:
    """Average hourly profiles per run: feeder net import, loss, minimum and maximum voltage.

    Runs whose profile coincides are drawn once and listed together (``"a = b"``)."""
    profiles: dict[str, dict[str, np.ndarray]] = {
        "import": {}, "loss": {}, "vmin": {}, "vmax": {}
    }  # fmt: skip
    for label, run_dir in runs.items():
        tables, _ = read_run(run_dir)
        iv = tables["intervals"]
        hour = iv["interval"] % 24
        profiles["import"][label] = -hourly_profile(tables, "p_kw", "prosumers").to_numpy()
        profiles["loss"][label] = hourly_profile(tables, "loss_kw", "intervals").to_numpy()
        profiles["vmin"][label] = iv.groupby(hour)["vmin_pu"].min().to_numpy()
        profiles["vmax"][label] = iv.groupby(hour)["vmax_pu"].max().to_numpy()
    fig, axes = new_figure(1, 4, width=17.0, height=3.8)
    panels = (
        ("import", "prosumers' net import (kW, mean)"),
        ("loss", "network loss (kW, mean)"),
        ("vmin", "lowest voltage (pu)"),
        ("vmax", "highest voltage (pu)"),
    )
    for ax, (key, ylabel) in zip(axes[0], panels, strict=True):
        first = next(iter(profiles[key].values()))
        plot_lines(ax, np.arange(len(first)), profiles[key])
        ax.set_ylabel(ylabel)
        ax.set_xlabel("hour of day")
        ax.grid(alpha=0.3)
    for ax in axes[0, 2:]:
        draw_voltage_limits(ax, *ax.get_ylim())
    return save(fig, path)
