"""Plots of a market comparison (PNG files, matplotlib's non-interactive backend)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from analysis.compare import hourly_profile, read_run


def plot_comparison(comparison: pd.DataFrame, path: Path) -> Path:
    """Bar charts of prosumer cost, network loss and market volumes per market mode."""
    panels = (
        ("prosumer_cost_eur", "prosumer cost (EUR)"),
        ("network_loss_kwh", "network loss (kWh)"),
        ("p2p_volume_kwh", "P2P volume (kWh)"),
        ("var_volume_kvarh", "Var support (kvarh)"),
    )
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.6))
    for ax, (column, title) in zip(axes, panels, strict=True):
        values = comparison[column]
        ax.bar(values.index, values.to_numpy(), color="tab:blue")
        ax.set_title(title)
        ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_daily_profiles(runs: Mapping[str, Path], path: Path) -> Path:
    """Average hourly profiles per mode: feeder net import, loss, minimum and maximum voltage."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for label, run_dir in runs.items():
        tables, _ = read_run(run_dir)
        net_import = -hourly_profile(tables, "p_kw", "prosumers")
        axes[0].plot(net_import.index, net_import.to_numpy(), label=label)
        loss = hourly_profile(tables, "loss_kw", "intervals")
        axes[1].plot(loss.index, loss.to_numpy(), label=label)
        iv = tables["intervals"]
        vmin = iv.groupby(iv["interval"] % 24)["vmin_pu"].min()
        vmax = iv.groupby(iv["interval"] % 24)["vmax_pu"].max()
        line = axes[2].plot(vmin.index, vmin.to_numpy(), label=f"{label} min")[0]
        axes[2].plot(vmax.index, vmax.to_numpy(), linestyle="--", color=line.get_color())
    titles = ("prosumers' net import (kW, mean)", "network loss (kW, mean)", "voltage range (pu)")
    for ax, title in zip(axes, titles, strict=True):
        ax.set_title(title)
        ax.set_xlabel("hour of day")
    axes[2].axhline(0.95, color="grey", linewidth=0.8)
    axes[2].axhline(1.05, color="grey", linewidth=0.8)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
