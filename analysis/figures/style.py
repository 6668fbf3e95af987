"""What every figure shares: the backend, saving, axes that show differences, value labels,
and series that coincide drawn (and listed) once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from dso.powerflow import VM_MAX_PU, VM_MIN_PU

#: Resolution of saved figures (dots per inch): sharp in a two-column paper.
DPI = 150
#: A value axis starts at 0 unless the values' spread is below this share of their magnitude.
TRUNCATE_BELOW_SPREAD = 0.25
#: Line styles cycled over series so that neighbouring lines stay distinguishable in print.
LINE_STYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def new_figure(
    nrows: int = 1, ncols: int = 1, *, width: float = 6.4, height: float = 3.6, **kwargs: Any
) -> tuple[Figure, np.ndarray]:
    """A figure (constrained layout) and its axes as a 2-D array (``squeeze`` off)."""
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(width, height), squeeze=False, layout="constrained", **kwargs
    )
    return fig, axes


def save(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as PNG to ``path`` and release it."""
    path = Path(path)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def value_limits(values: Sequence[float] | np.ndarray) -> tuple[float, float] | None:
    """Axis limits that show the differences among ``values``, or None to start at 0.

    None when the values change sign, are all zero, or spread over at least
    :data:`TRUNCATE_BELOW_SPREAD` of their magnitude (differences are visible from 0).
    Otherwise a range around the values with room for value labels at the bars' ends.
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not v.size:
        return None
    lo, hi = float(v.min()), float(v.max())
    top = max(abs(lo), abs(hi))
    if top == 0 or lo < 0 < hi or hi - lo >= TRUNCATE_BELOW_SPREAD * top:
        return None
    pad = max(hi - lo, 1e-3 * top)
    if hi <= 0:  # bars hang down from 0: their labels need room below
        return lo - 0.6 * pad, hi + 0.5 * pad
    return lo - 0.5 * pad, hi + 0.6 * pad


def bars_with_values(
    ax: Axes,
    labels: Sequence[str],
    values: Sequence[float] | np.ndarray,
    unit: str,
    colors: Sequence[str] | None = None,
) -> None:
    """Bars labelled with their values, on a value axis that shows their differences.

    A truncated axis says so in its label (``axis not from 0``).
    """
    heights = np.asarray(values, dtype=float)
    bars = ax.bar(list(labels), heights, color=colors)
    ax.bar_label(bars, labels=[format_value(v) for v in heights], fontsize=7, padding=2)
    value_axis(ax, heights, unit)
    ax.tick_params(axis="x", rotation=30, labelsize=8)
    for tick in ax.get_xticklabels():
        tick.set_horizontalalignment("right")


def grouped_bars_with_values(
    ax: Axes, groups: Sequence[str], series: Mapping[str, Sequence[float] | np.ndarray], unit: str
) -> None:
    """Bars side by side in each of ``groups`` (the x ticks), one colour per series (its
    legend label), each labelled with its value (vertical, so that many bars stay readable),
    on a value axis that shows their differences."""
    x = np.arange(len(groups))
    width = 0.8 / max(len(series), 1)
    every = []
    for i, (label, values) in enumerate(series.items()):
        heights = np.asarray(values, dtype=float)
        offset = (i - (len(series) - 1) / 2) * width
        bars = ax.bar(x + offset, heights, width, color=f"C{i % 10}", label=label)
        texts = [format_value(v) for v in heights]
        ax.bar_label(bars, labels=texts, fontsize=6, padding=2, rotation=90)
        every.append(heights)
    value_axis(ax, np.concatenate(every) if every else np.zeros(1), unit, label_room=0.35)
    ax.set_xticks(x, list(groups), fontsize=8)


def value_axis(
    ax: Axes, values: Sequence[float] | np.ndarray, unit: str, label_room: float = 0.12
) -> None:
    """Limits of the value axis of bars of ``values`` (:func:`value_limits`; from 0 where
    that shows their differences) with ``label_room`` of the range left for value labels,
    and its label ``unit`` (``(axis not from 0)`` when truncated)."""
    heights = np.asarray(values, dtype=float)
    limits = value_limits(heights)
    if limits is None:
        low, high = min(0.0, float(np.nanmin(heights))), max(0.0, float(np.nanmax(heights)))
        room = label_room * (high - low or 1.0)
        ax.set_ylim(low - (room if low < 0 else 0.0), high + (room if high > 0 else 0.0))
        ax.set_ylabel(unit)
    else:
        low, high = limits
        extra = max(label_room - 0.12, 0.0) * (high - low)  # value_limits leaves 0.12 already
        if high <= 0:
            low -= extra
        else:
            high += extra
        ax.set_ylim(low, high)
        ax.set_ylabel(f"{unit} (axis not from 0)")


def format_value(value: float) -> str:
    """A value label: 4 significant digits with thousands separators."""
    if not np.isfinite(value):
        return "n/a"
    if value != 0 and abs(value) < 0.01:
        return f"{value:.2e}"
    return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"


def merge_coinciding(series: Mapping[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
    """Series grouped where they coincide, labelled ``"a = b"``, in first-seen order.

    A line drawn exactly over another cannot be seen; listing it apart in a legend misleads.
    """
    groups: list[tuple[list[str], np.ndarray]] = []
    for label, values in series.items():
        arr = np.asarray(values, dtype=float)
        for names, first in groups:
            if first.shape == arr.shape and np.allclose(first, arr, rtol=1e-9, atol=1e-12):
                names.append(label)
                break
        else:
            groups.append(([label], arr))
    return [(" = ".join(names), arr) for names, arr in groups]


def plot_lines(ax: Axes, x: np.ndarray, series: Mapping[str, np.ndarray]) -> None:
    """Each distinct series once, in its own colour, line style and marker, with a legend."""
    for i, (label, values) in enumerate(merge_coinciding(series)):
        ax.plot(
            x,
            values,
            label=label,
            color=f"C{i}",
            linestyle=LINE_STYLES[i % len(LINE_STYLES)],
            marker=MARKERS[i % len(MARKERS)],
            markersize=3,
            markevery=max(len(x) // 12, 1),
        )
    ax.legend(fontsize=7)


def draw_voltage_limits(ax: Axes, low: float, high: float) -> None:
    """The DSO's voltage band as grey lines where it lies within ``[low, high]``."""
    for limit in (VM_MIN_PU, VM_MAX_PU):
        if low <= limit <= high:
            ax.axhline(limit, color="grey", linewidth=0.8, linestyle=":")


def steps(
    start_h: np.ndarray, values: np.ndarray, duration_h: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-interval ``values`` as a post-step line that covers the last interval too."""
    x = np.append(np.asarray(start_h, dtype=float), float(start_h[-1]) + duration_h)
    y = np.asarray(values, dtype=float)
    return x, np.append(y, y[-1])
