"""Projection of an action's active power onto the feasible set, for one prosumer or a batch
(an :class:`agents.policy.Observation` and :class:`agents.battery.Battery` of numbers, or of
arrays of worlds x prosumers; every field broadcasts).

In this order (``docs/market.md``): the battery's power and energy limits; the inverter's
active-power rating (PV curtailed first, then the battery); the export limit of the envelope
(by curtailing PV, then less discharge); the import limit (by more discharge or less charge,
as far as the battery and the inverter allow; load is never shed, so any remaining excess is
reported as ``import_violation_kw``). :func:`clip_q_inverter` then clips the inverter's
reactive power into the reactive envelope and the capability the active power leaves.
"""

from __future__ import annotations

from dataclasses import dataclass

from agents.arrays import Floats, namespace
from agents.battery import Battery, feasible_battery_p_kw, next_soc_kwh
from agents.policy import Observation


@dataclass(frozen=True)
class ActivePlan:
    """Active-power set-points (kW, injection positive) and the next state of charge."""

    battery_p_kw: Floats
    pv_used_kw: Floats
    p_kw: Floats  # net injection at the bus: pv_used - load + battery
    import_violation_kw: Floats
    next_soc_kwh: Floats


def project_active(
    battery_action: Floats, obs: Observation, battery: Battery, duration_h: float
) -> ActivePlan:
    """The feasible active plan of ``battery_action`` (fraction of the battery's power, +1
    full discharge) from ``obs`` (load, PV, state of charge, inverter, envelope); see the
    module docstring for the order of the limits."""
    pv_kw, load_kw, soc_kwh = obs.pv_kw, obs.load_kw, obs.soc_kwh
    export_kw, import_kw = obs.export_kw, obs.import_kw
    capacity_kwh, battery_kw = battery.capacity_kwh, battery.power_kw
    efficiency = battery.efficiency
    xp = namespace(battery_action, pv_kw, load_kw, soc_kwh, export_kw, import_kw, obs.inverter_kva)
    s = xp.asarray(obs.inverter_kva, dtype=float)

    def battery_limit(p_kw: Floats) -> Floats:
        return feasible_battery_p_kw(
            p_kw, soc_kwh, capacity_kwh, battery_kw, efficiency, duration_h
        )

    b = battery_limit(xp.asarray(battery_action, dtype=float) * battery_kw)
    pv = xp.asarray(pv_kw, dtype=float)
    # Inverter active-power rating: curtail PV first, then the battery.
    over, under = pv + b > s, pv + b < -s
    pv = xp.where(over, xp.maximum(0.0, s - b), pv)
    b = xp.where(over, xp.minimum(b, s - pv), xp.where(under, -s - pv, b))
    p = pv - load_kw + b
    # Export limit: curtail PV, then reduce discharge.
    above = p > export_kw
    excess = p - export_kw
    cut = xp.minimum(excess, pv)
    pv = xp.where(above, pv - cut, pv)
    b = xp.where(above, b - (excess - cut), b)
    p = xp.where(above, export_kw, p)
    # Import limit: discharge more / charge less, as far as the battery allows.
    below = p < -import_kw
    room = xp.minimum(battery_limit(b + (-import_kw - p)), s - pv)
    b = xp.where(below, xp.maximum(b, room), b)
    p = xp.where(below, pv - load_kw + b, p)
    violation = xp.where(below, xp.maximum(0.0, -import_kw - p), 0.0)
    soc = next_soc_kwh(soc_kwh, b, capacity_kwh, efficiency, duration_h)
    return ActivePlan(b, pv, p, violation, soc)


def clip_q_inverter(q_action: Floats, obs: Observation, p_inverter_kw: Floats) -> Floats:
    """The inverter's reactive power (kvar): ``q_action * inverter_kva`` clipped into the
    envelope ``[q_min_kvar, q_max_kvar]`` intersected with ``±sqrt(s**2 - p_inverter**2)``
    (both contain 0); 0 (unity power factor) without a Var market."""
    q_min_kvar, q_max_kvar = obs.q_min_kvar, obs.q_max_kvar
    xp = namespace(q_action, obs.inverter_kva, p_inverter_kw, q_min_kvar, q_max_kvar)
    s = xp.asarray(obs.inverter_kva, dtype=float)
    if not obs.var_market:
        return 0.0 * s
    q_room = xp.sqrt(xp.maximum(0.0, s * s - p_inverter_kw * p_inverter_kw))
    q_low, q_high = xp.maximum(-q_room, q_min_kvar), xp.minimum(q_room, q_max_kvar)
    return xp.minimum(xp.maximum(q_action * s, q_low), q_high)
