"""The markets over a run: P2P prices and volumes against the retail tariffs, and Var prices
and reactive power by bus."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import TwoSlopeNorm

from analysis.figures.style import new_figure, save, steps


def plot_p2p_market(tables: Mapping[str, pd.DataFrame], duration_h: float, path: Path) -> Path:
    """Top: retail and feed-in tariffs, every P2P trade's price (dot area ~ energy) and the
    volume-weighted mean price per interval. Bottom: P2P energy traded per interval."""
    iv = tables["intervals"]
    trades = tables["trades"]
    hours = iv["interval"].to_numpy() * duration_h
    fig, axes = new_figure(
        2, 1, width=7.0, height=5.0, sharex=True, gridspec_kw={"height_ratios": (3, 2)}
    )
    price_ax, volume_ax = axes[0, 0], axes[1, 0]
    for column, color, label in (
        ("retail_eur_per_kwh", "C3", "retail tariff"),
        ("feed_in_eur_per_kwh", "C2", "feed-in tariff"),
    ):
        x, y = steps(hours, iv[column].to_numpy(), duration_h)
        price_ax.step(x, y, where="post", color=color, label=label)
    if len(trades):
        t_h = (trades["interval"].to_numpy() + 0.5) * duration_h
        area = 60.0 * trades["quantity_kwh"] / max(float(trades["quantity_kwh"].max()), 1e-9)
        price_ax.scatter(
            t_h,
            trades["price_eur_per_kwh"],
            s=area + 4,
            color="C0",
            alpha=0.4,
            label="P2P trade (area ~ kWh)",
        )
        by_interval = trades.assign(value=trades["quantity_kwh"] * trades["price_eur_per_kwh"])
        sums = by_interval.groupby("interval")[["value", "quantity_kwh"]].sum()
        sums = sums[sums["quantity_kwh"] > 0]
        mean_price = sums["value"] / sums["quantity_kwh"]
        price_ax.plot(
            (mean_price.index + 0.5) * duration_h,
            mean_price,
            "o-",
            color="C0",
            markersize=3,
            label="P2P mean price (volume-weighted)",
        )
        volume = trades.groupby("interval")["quantity_kwh"].sum()
        volume_ax.bar((volume.index + 0.5) * duration_h, volume, width=0.8 * duration_h, color="C0")
    else:
        volume_ax.text(
            0.5,
            0.5,
            "no P2P trades in this run",
            ha="center",
            va="center",
            transform=volume_ax.transAxes,
        )
    price_ax.set_ylabel("price (EUR/kWh)")
    price_ax.legend(fontsize=7, loc="best")
    price_ax.grid(alpha=0.3)
    price_ax.set_title("P2P prices and volumes against the retail tariffs")
    volume_ax.set_ylabel("P2P energy (kWh)")
    volume_ax.set_xlabel("time (h from the start of the run)")
    volume_ax.grid(alpha=0.3)
    return save(fig, path)


def by_bus(prosumers: pd.DataFrame, column: str, how: str) -> pd.DataFrame:
    """``column`` per prosumer bus (rows) and interval (columns), aggregated by ``how``."""
    return prosumers.pivot_table(index="bus", columns="interval", values=column, aggfunc=how)


#: Heat maps of :func:`plot_var_by_bus`: prosumers column, aggregate per bus, colour bar label.
VAR_PANELS = (
    ("var_price_eur_per_kvarh", "mean", "Var price (EUR/kvarh)"),
    ("q_inverter_kvar", "sum", "inverter reactive power (kvar)"),
)


def _heatmap(ax: Axes, frame: pd.DataFrame, duration_h: float, label: str) -> None:
    """Buses (rows) over time, on a diverging scale centred at 0."""
    values = frame.to_numpy(dtype=float)
    span = float(np.nanmax(np.abs(values))) if values.size else 0.0
    norm = TwoSlopeNorm(0.0, -span, span) if span > 0 else None
    hours = frame.columns.to_numpy() * duration_h
    extent = (hours[0], hours[-1] + duration_h, len(frame) - 0.5, -0.5)
    image = ax.imshow(
        values, aspect="auto", interpolation="nearest", extent=extent, cmap="RdBu_r", norm=norm
    )
    ax.figure.colorbar(image, ax=ax, label=label)
    step = max(len(frame) // 12, 1)
    ax.set_yticks(range(0, len(frame), step), [str(b) for b in frame.index[::step]])
    ax.set_ylabel("bus")
    if span == 0:
        ax.text(0.5, 0.5, "zero everywhere", ha="center", va="center", transform=ax.transAxes)


def plot_var_by_bus(prosumers: pd.DataFrame, duration_h: float, path: Path) -> Path:
    """Heat maps over time of the Var price at each prosumer bus and the inverters' reactive
    power there (+ injection)."""
    fig, axes = new_figure(2, 1, width=7.0, height=6.0, sharex=True)
    for ax, (column, how, label) in zip(axes[:, 0], VAR_PANELS, strict=True):
        _heatmap(ax, by_bus(prosumers, column, how), duration_h, label)
    axes[0, 0].set_title("Var price and reactive power by bus")
    axes[1, 0].set_xlabel("time (h from the start of the run)")
    return save(fig, path)
