"""The figures of the case studies computed from their run tables (``docs/studies.md``):
hosting capacity of a PV sweep, log-log growth exponents, and sweep sensitivities."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

#: Columns of :func:`hosting_capacity`'s table.
HOSTING_COLUMNS = (
    "hosting_capacity_pv_penetration",
    "first_limit_pv_penetration",
    "first_limit",
    "reached",
)


def hosting_capacity(
    sweep: pd.DataFrame,
    *,
    by: str,
    curtailment_tolerance_pct: float = 0.0,
) -> pd.DataFrame:
    """Per group ``by`` of a PV sweep, the hosting capacity: the highest swept PV
    penetration below which no point had a voltage violation or curtailed more than
    ``curtailment_tolerance_pct`` % of its available PV energy.

    ``sweep`` rows: ``by``, ``pv_penetration``, ``voltage_violations``, ``pv_curtailed_kwh``,
    ``pv_available_kwh``. Each group's points are taken in order of penetration; the first
    point that breaks a limit ends the search (``first_limit``: ``voltage``, ``curtailment``
    or both; ``reached`` False when no swept point does, so the capacity is at least the
    highest point). A group whose lowest point already breaks a limit has capacity 0.
    """
    if curtailment_tolerance_pct < 0 or not math.isfinite(curtailment_tolerance_pct):
        raise ValueError(f"curtailment_tolerance_pct={curtailment_tolerance_pct!r} must be >= 0")
    rows = {}
    for key, group in sweep.groupby(by, sort=True):
        group = group.sort_values("pv_penetration")
        available = group["pv_available_kwh"].to_numpy(dtype=float)
        curtailed_pct = np.divide(
            100.0 * group["pv_curtailed_kwh"].to_numpy(dtype=float),
            available,
            out=np.zeros_like(available),
            where=available > 0,
        )
        voltage = group["voltage_violations"].to_numpy() > 0
        curtail = curtailed_pct > curtailment_tolerance_pct + 1e-9
        broken = np.flatnonzero(voltage | curtail)
        penetration = group["pv_penetration"].to_numpy(dtype=float)
        if broken.size == 0:
            rows[key] = (float(penetration[-1]), math.nan, "", False)
            continue
        first = int(broken[0])
        why = "+".join(
            name
            for name, hit in (("voltage", voltage[first]), ("curtailment", curtail[first]))
            if hit
        )
        capacity = float(penetration[first - 1]) if first > 0 else 0.0
        rows[key] = (capacity, float(penetration[first]), why, True)
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=list(HOSTING_COLUMNS))
    frame.index.name = by
    return frame


def loglog_fit(x: Sequence[float], y: Sequence[float]) -> tuple[float, float, float]:
    """Least-squares fit of ``log y = log a + b log x``: ``(b, a, r2)``.

    Needs at least two distinct positive ``x`` and every ``y > 0``; otherwise NaNs."""
    xs = np.asarray(x, dtype=float)
    ys = np.asarray(y, dtype=float)
    ok = (xs > 0) & (ys > 0) & np.isfinite(xs) & np.isfinite(ys)
    if ok.sum() < 2 or len(np.unique(xs[ok])) < 2 or not ok.all():
        return math.nan, math.nan, math.nan
    lx, ly = np.log(xs), np.log(ys)
    b, log_a = np.polyfit(lx, ly, 1)
    residual = ly - (log_a + b * lx)
    total = ly - ly.mean()
    ss_tot = float(total @ total)
    r2 = 1.0 - float(residual @ residual) / ss_tot if ss_tot > 0 else 1.0
    return float(b), float(math.exp(log_a)), r2


def growth_exponents(
    frame: pd.DataFrame, *, size: str, metrics: Sequence[str], by: Sequence[str]
) -> pd.DataFrame:
    """One row per group ``by`` and metric: the fitted exponent ``b`` of ``metric ~ size^b``
    over all points, the prefactor, ``r2``, the number of points, and ``exponent_last``: the
    slope between the two largest sizes (where a quadratic term dominates a linear one)."""
    rows = []
    for key, group in frame.groupby(list(by), sort=True):
        keys = key if isinstance(key, tuple) else (key,)
        group = group.sort_values(size)
        for metric in metrics:
            x, y = group[size].to_numpy(), group[metric].to_numpy()
            b, a, r2 = loglog_fit(x, y)
            last = loglog_fit(x[-2:], y[-2:])[0] if len(x) >= 2 else math.nan
            fit = {"metric": metric, "exponent": b, "prefactor": a, "r2": r2}
            rows.append(
                {
                    **dict(zip(by, keys, strict=True)),
                    **fit,
                    "exponent_last": last,
                    "points": len(group),
                }
            )
    return pd.DataFrame(rows)


def sweep_slopes(
    frame: pd.DataFrame, *, x: str, metrics: Sequence[str], by: Sequence[str]
) -> pd.DataFrame:
    """Per group ``by`` and metric: the least-squares slope of ``metric`` against ``x`` and
    the metric's relative range over the sweep (``(max - min) / mean |metric|``, %)."""
    rows = []
    for key, group in frame.groupby(list(by), sort=True):
        keys = key if isinstance(key, tuple) else (key,)
        xs = group[x].to_numpy(dtype=float)
        for metric in metrics:
            ys = group[metric].to_numpy(dtype=float)
            slope = float(np.polyfit(xs, ys, 1)[0]) if len(np.unique(xs)) > 1 else math.nan
            scale = float(np.mean(np.abs(ys)))
            spread = 100.0 * float(ys.max() - ys.min()) / scale if scale > 0 else 0.0
            rows.append(
                {
                    **dict(zip(by, keys, strict=True)),
                    "metric": metric,
                    "slope": slope,
                    "range_pct": spread,
                    "points": len(group),
                }
            )
    return pd.DataFrame(rows)
