"""Training curves: mean and spread over seeds of metrics from several ``metrics.csv``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from analysis.figures.style import LINE_STYLES, new_figure, save

#: Metrics drawn by default, with their axis labels (``agents.learning.train.METRIC_COLUMNS``).
METRIC_LABELS = {
    "episode_return": "training return per world-day (-EUR)",
    "val_cost": "validation cost per day (EUR)",
    "diversity": "population diversity",
    "coverage": "action-space coverage",
    "critic_loss": "critic loss",
}


def spread_over_seeds(frames: Sequence[pd.DataFrame], metric: str) -> pd.DataFrame:
    """Per ``env_steps``: ``mean``, ``std`` (0 with one seed) and ``n`` of ``metric`` over the
    seeds that logged it there."""
    rows = pd.concat(
        [f[["env_steps", metric]].dropna() for f in frames if metric in f], ignore_index=True
    )
    stats = rows.groupby("env_steps")[metric].agg(["mean", "std", "count"])
    return stats.rename(columns={"count": "n"}).fillna({"std": 0.0})


def plot_training_curves(
    runs: Mapping[str, Sequence[Path]],
    path: Path,
    metrics: Sequence[str] = ("episode_return", "val_cost"),
) -> Path:
    """One panel per metric; per learner (``runs``: label -> its seeds' ``metrics.csv``) the
    mean over seeds and a band of one standard deviation."""
    frames = {label: [pd.read_csv(p) for p in files] for label, files in runs.items()}
    fig, axes = new_figure(1, len(metrics), width=5.0 * len(metrics), height=3.6)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for i, (label, seeds) in enumerate(frames.items()):
            stats = spread_over_seeds(seeds, metric)
            if stats.empty:
                continue
            x = stats.index.to_numpy()
            ax.plot(
                x,
                stats["mean"],
                color=f"C{i}",
                linestyle=LINE_STYLES[i % len(LINE_STYLES)],
                label=f"{label} (n={len(seeds)} seeds)",
            )
            ax.fill_between(
                x,
                stats["mean"] - stats["std"],
                stats["mean"] + stats["std"],
                color=f"C{i}",
                alpha=0.2,
                linewidth=0,
            )
        ax.set_xlabel("environment steps")
        ax.set_ylabel(METRIC_LABELS.get(metric, metric))
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    fig.suptitle("training curves: mean over seeds, band = one standard deviation", fontsize=9)
    return save(fig, path)
