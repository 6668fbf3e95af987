"""Each prosumer's dynamic operating envelope against its dispatch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.figures.style import new_figure, save, steps

#: Panels per row, and the most prosumers drawn (the first by id beyond that are named).
COLUMNS = 4
MAX_PANELS = 40


def plot_envelopes(prosumers: pd.DataFrame, duration_h: float, path: Path) -> Path:
    """One panel per prosumer: the envelope (export limit above 0, import limit below) as a
    band, the net injection ``p_kw`` as a line, intervals outside the band in red."""
    ids = sorted(prosumers["prosumer"].unique())
    shown = ids[:MAX_PANELS]
    rows = max(-(-len(shown) // COLUMNS), 1)
    fig, axes = new_figure(rows, COLUMNS, width=10.0, height=1.7 * rows + 0.6, sharex=True)
    for ax in axes.flat[len(shown) :]:
        ax.set_visible(False)
    for ax, pid in zip(axes.flat, shown, strict=False):
        rows_p = prosumers[prosumers["prosumer"] == pid].sort_values("interval")
        hours = rows_p["interval"].to_numpy() * duration_h
        export = rows_p["export_limit_kw"].to_numpy()
        imp = -rows_p["import_limit_kw"].to_numpy()
        p_kw = rows_p["p_kw"].to_numpy()
        x, low = steps(hours, imp, duration_h)
        high = steps(hours, export, duration_h)[1]
        ax.fill_between(x, low, high, step="post", color="C2", alpha=0.25, linewidth=0)
        ax.step(*steps(hours, p_kw, duration_h), where="post", color="C0", linewidth=1.0)
        tol = 1e-6 * np.maximum(1.0, np.abs(p_kw))
        outside = (p_kw > export + tol) | (p_kw < imp - tol)
        ax.plot(hours[outside] + duration_h / 2, p_kw[outside], "o", color="C3", markersize=3)
        ax.axhline(0.0, color="0.6", linewidth=0.5)
        ax.set_title(f"{pid} (bus {int(rows_p['bus'].iloc[0])})", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes[:, 0]:
        ax.set_ylabel("kW (+ export)", fontsize=8)
    for ax in axes[-1, :]:
        ax.set_xlabel("time (h)", fontsize=8)
    more = f"; first {len(shown)} of {len(ids)} prosumers" if len(ids) > len(shown) else ""
    fig.suptitle(
        "envelopes (green band: import to export limit) and dispatch (blue: net injection, "
        f"red: outside the envelope){more}",
        fontsize=9,
    )
    return save(fig, path)
