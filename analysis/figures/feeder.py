"""The feeder: voltage along it (min-max band over the run) and a map coloured by voltage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection

from analysis.figures.style import draw_voltage_limits, new_figure, save
from dso.networks import Feeder


def voltage_by_bus(buses: pd.DataFrame) -> pd.DataFrame:
    """Per bus (index): ``min``, ``mean`` and ``max`` voltage over the run (pu)."""
    return buses.groupby("bus")["vm_pu"].agg(["min", "mean", "max"])


def plot_voltage_profile(buses: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Voltage at every bus: the band between its lowest and highest value over the run, and
    its mean; the DSO's limits where they fall in the plotted range."""
    stats = voltage_by_bus(buses)
    n_intervals = buses["interval"].nunique()
    fig, axes = new_figure(width=7.0, height=3.4)
    ax = axes[0, 0]
    bus = stats.index.to_numpy()
    ax.fill_between(
        bus,
        stats["min"],
        stats["max"],
        color="C0",
        alpha=0.3,
        step="mid",
        label=f"min-max over {n_intervals} intervals",
    )
    ax.plot(bus, stats["mean"], color="C0", marker="o", markersize=3, label="mean")
    low, high = float(stats["min"].min()), float(stats["max"].max())
    pad = max(0.1 * (high - low), 5e-4)
    ax.set_ylim(low - pad, high + pad)
    draw_voltage_limits(ax, low - pad, high + pad)
    ax.set_xlabel("bus (index along the feeder data)")
    ax.set_ylabel("voltage magnitude (pu)")
    ax.set_title(title or "voltage along the feeder")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return save(fig, path)


def tree_layout(feeder: Feeder) -> np.ndarray:
    """Drawing coordinates ``(n_bus, 2)`` of a radial feeder: x the depth in lines from the
    slack, y the order of the leaves, each parent centred over its children."""
    children: list[list[int]] = [[] for _ in range(feeder.n_bus)]
    for line in feeder.lines_root_first:
        children[int(feeder.from_bus[line])].append(int(feeder.to_bus[line]))
    xy = np.zeros((feeder.n_bus, 2))
    leaves = 0
    # iterative post-order: a bus is placed once all its children are
    stack: list[tuple[int, int, bool]] = [(feeder.slack_bus, 0, False)]
    while stack:
        bus, depth, expanded = stack.pop()
        if not children[bus]:
            xy[bus] = (depth, -leaves)
            leaves += 1
        elif expanded:
            xy[bus] = (depth, np.mean([xy[c, 1] for c in children[bus]]))
        else:
            stack.append((bus, depth, True))
            stack.extend((c, depth + 1, False) for c in reversed(children[bus]))
    return xy


def plot_network_map(
    feeder: Feeder,
    vm_pu: np.ndarray,
    path: Path,
    coordinates: np.ndarray | None = None,
    *,
    value_label: str = "lowest voltage over the run (pu)",
    highlight: np.ndarray | None = None,
) -> Path:
    """The feeder's lines and buses, buses coloured by ``vm_pu`` (one value per bus).

    ``coordinates`` from the network data where present, else :func:`tree_layout`.
    ``highlight``: buses drawn larger (e.g. those with prosumers).
    """
    from_data = coordinates is not None
    xy = np.asarray(coordinates if from_data else tree_layout(feeder), dtype=float)
    fig, axes = new_figure(width=7.0, height=5.0)
    ax = axes[0, 0]
    segments = [(xy[a], xy[b]) for a, b in zip(feeder.from_bus, feeder.to_bus, strict=True)]
    ax.add_collection(LineCollection(segments, colors="0.55", linewidths=1.0, zorder=1))
    size = np.full(feeder.n_bus, 14.0)
    if highlight is not None:
        size[np.asarray(highlight, dtype=int)] = 36.0
    points = ax.scatter(
        xy[:, 0],
        xy[:, 1],
        c=vm_pu,
        s=size,
        cmap="viridis",
        zorder=2,
        edgecolors="black",
        linewidths=0.3,
    )
    slack = xy[feeder.slack_bus]
    ax.scatter(
        [slack[0]],
        [slack[1]],
        marker="s",
        s=80,
        color="black",
        zorder=3,
        label="substation (slack)",
    )
    fig.colorbar(points, ax=ax, label=value_label)
    ax.set_aspect("equal" if from_data else "auto")
    ax.set_xticks([])
    ax.set_yticks([])
    where = "bus coordinates from the network data" if from_data else "tree layout of the topology"
    ax.set_title(f"{feeder.name}: {feeder.n_bus} buses ({where})", fontsize=9)
    note = "larger dots: prosumer buses" if highlight is not None else ""
    ax.legend(loc="best", fontsize=7, title=note or None, title_fontsize=7)
    ax.autoscale_view()
    return save(fig, path)
