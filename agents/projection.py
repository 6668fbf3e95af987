"""Projection of an action's active power onto the feasible set, array-based (any shape:
prosumers, or worlds x prosumers; every argument broadcasts).

In this order (``docs/market.md``): the battery's power and energy limits; the inverter's
active-power rating (PV curtailed first, then the battery); the export limit of the envelope
(by curtailing PV, then less discharge); the import limit (by more discharge or less charge,
as far as the battery and the inverter allow; load is never shed, so any remaining excess is
reported as ``import_violation_kw``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agents.battery import Floats, feasible_battery_p_kw, next_soc_kwh


@dataclass(frozen=True)
class ActivePlan:
    """Active-power set-points (kW, injection positive) and the next state of charge."""

    battery_p_kw: np.ndarray
    pv_used_kw: np.ndarray
    p_kw: np.ndarray  # net injection at the bus: pv_used - load + battery
    import_violation_kw: np.ndarray
    next_soc_kwh: np.ndarray


def project_active(
    battery_action: Floats,
    pv_kw: Floats,
    load_kw: Floats,
    soc_kwh: Floats,
    capacity_kwh: Floats,
    battery_kw: Floats,
    efficiency: Floats,
    inverter_kva: Floats,
    export_kw: Floats,
    import_kw: Floats,
    duration_h: float,
) -> ActivePlan:
    """The feasible active plan of ``battery_action`` (fraction of ``battery_kw``, +1 full
    discharge); see the module docstring for the order of the limits."""
    s = np.asarray(inverter_kva, dtype=float)

    def battery_limit(p_kw: np.ndarray) -> np.ndarray:
        return feasible_battery_p_kw(
            p_kw, soc_kwh, capacity_kwh, battery_kw, efficiency, duration_h
        )

    b = battery_limit(np.asarray(battery_action, dtype=float) * battery_kw)
    pv = np.asarray(pv_kw, dtype=float)
    # Inverter active-power rating: curtail PV first, then the battery.
    over, under = pv + b > s, pv + b < -s
    pv = np.where(over, np.maximum(0.0, s - b), pv)
    b = np.where(over, np.minimum(b, s - pv), np.where(under, -s - pv, b))
    p = pv - load_kw + b
    # Export limit: curtail PV, then reduce discharge.
    above = p > export_kw
    excess = p - export_kw
    cut = np.minimum(excess, pv)
    pv = np.where(above, pv - cut, pv)
    b = np.where(above, b - (excess - cut), b)
    p = np.where(above, export_kw, p)
    # Import limit: discharge more / charge less, as far as the battery allows.
    below = p < -np.asarray(import_kw)
    room = np.minimum(battery_limit(b + (-import_kw - p)), s - pv)
    b = np.where(below, np.maximum(b, room), b)
    p = np.where(below, pv - load_kw + b, p)
    violation = np.where(below, np.maximum(0.0, -import_kw - p), 0.0)
    soc = next_soc_kwh(soc_kwh, b, capacity_kwh, efficiency, duration_h)
    return ActivePlan(b, pv, p, violation, soc)
