"""Plots of the case studies (PNG, matplotlib's non-interactive backend), units on every
axis: market changes by policy, hosting capacity curves, sweeps, overhead log-log."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import NullFormatter

DPI = 120


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def plot_market_changes(comparison: pd.DataFrame, path: Path) -> Path:
    """Grouped bars (one group per market mode, one bar per policy) of the prosumers' cost
    and the network loss, as % change against each policy's grid-only run, with labels."""
    panels = (
        ("cost_change_pct", "prosumers' cost vs grid-only (%)"),
        ("loss_change_pct", "network loss vs grid-only (%)"),
    )
    policies = list(dict.fromkeys(comparison.index.get_level_values("policy")))
    markets = list(dict.fromkeys(comparison.index.get_level_values("market")))
    width = 0.8 / max(len(policies), 1)
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.0))
    for ax, (column, title) in zip(axes, panels, strict=True):
        x = np.arange(len(markets))
        for k, policy in enumerate(policies):
            values = [float(comparison.loc[(policy, m), column]) for m in markets]
            bars = ax.bar(x + (k - (len(policies) - 1) / 2) * width, values, width, label=policy)
            ax.bar_label(bars, fmt="%.2f", fontsize=7)
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_xticks(x, markets)
        ax.set_ylabel(title)
        ax.set_xlabel("market mode")
        ax.margins(y=0.12)  # room for the value labels
        ax.legend(title="policy", fontsize=8, loc="lower left")
    return _save(fig, path)


def plot_hosting_curves(sweep: pd.DataFrame, by: str, path: Path) -> Path:
    """Against PV penetration (kWp per kW of load peak), per group ``by``: PV curtailed (% of
    available), PV exported (MWh), voltage violations (bus-intervals), DSO net (EUR)."""
    panels = (
        ("pv_curtailed_pct", "PV curtailed (% of available)"),
        ("pv_exported_mwh", "PV exported (MWh)"),
        ("voltage_violations", "voltage violations (bus-intervals)"),
        ("welfare_dso_eur", "DSO net benefit (EUR)"),
    )
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.8))
    for key, group in sweep.groupby(by, sort=True):
        group = group.sort_values("pv_penetration")
        for ax, (column, _) in zip(axes, panels, strict=True):
            ax.plot(group["pv_penetration"], group[column], marker="o", label=str(key))
    for ax, (_, title) in zip(axes, panels, strict=True):
        ax.set_xlabel("PV penetration (kWp per kW of load peak)")
        ax.set_ylabel(title)
        ax.grid(alpha=0.3)
    axes[0].legend(title=by, fontsize=8)
    return _save(fig, path)


def plot_sweeps(
    frame: pd.DataFrame,
    sweeps: Sequence[tuple[str, str]],
    metrics: Sequence[tuple[str, str]],
    by: str,
    path: Path,
) -> Path:
    """One row of panels per metric, one column per swept variable ``(column, axis label)``;
    one line per group ``by``. ``frame`` rows: ``sweep`` (the swept column), its value."""
    fig, axes = plt.subplots(
        len(metrics), len(sweeps), figsize=(4.4 * len(sweeps), 2.9 * len(metrics)), squeeze=False
    )
    for j, (sweep, xlabel) in enumerate(sweeps):
        part = frame[frame["sweep"] == sweep]
        for k, (key, group) in enumerate(part.groupby(by, sort=True)):
            group = group.sort_values(sweep)
            style = {"linestyle": ("-", "--", ":")[k % 3], "marker": "os^"[k % 3]}
            for i, (metric, _) in enumerate(metrics):  # dashed over solid: equal lines show
                axes[i, j].plot(group[sweep], group[metric], label=str(key), **style)
        for i, (_, ylabel) in enumerate(metrics):
            axes[i, j].set_ylabel(ylabel)
            axes[i, j].grid(alpha=0.3)
        axes[-1, j].set_xlabel(xlabel)
    axes[0, 0].legend(title=by, fontsize=8)
    return _save(fig, path)


def plot_overhead(frame: pd.DataFrame, metrics: Sequence[tuple[str, str]], path: Path) -> Path:
    """Log-log panels of each metric against the number of prosumers; one line per protocol
    and backend (marker: protocol, line style: backend)."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics), 3.9), squeeze=False)
    styles = ("-", "--", ":", "-.")
    markers = ("o", "s", "^", "D")
    backends = list(dict.fromkeys(frame["backend"]))
    protocols = list(dict.fromkeys(frame["protocol"]))
    for ax, (metric, ylabel) in zip(axes[0], metrics, strict=True):
        for (protocol, backend), group in frame.groupby(["protocol", "backend"], sort=True):
            group = group.sort_values("prosumers")
            ax.plot(
                group["prosumers"],
                group[metric],
                linestyle=styles[backends.index(backend) % len(styles)],
                marker=markers[protocols.index(protocol) % len(markers)],
                label=f"{protocol}, {backend}",
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        sizes = sorted(set(frame["prosumers"]))
        ax.set_xticks(sizes, [str(n) for n in sizes])  # the measured sizes, not 10^k minors
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("prosumers (log)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3, which="both")
    axes[0, 0].legend(fontsize=7)
    return _save(fig, path)
