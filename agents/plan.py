"""Turn a normalised action into a feasible physical plan for one interval.

The plan respects, in this order: the battery's power and energy limits; the inverter
rating ``p**2 + q**2 <= s**2`` (the inverter carries PV and battery); the export limit of the
dynamic operating envelope (by curtailing PV, then less discharge); the import limit (by
more discharge or less charge, as far as the battery allows — load cannot be shed, so any
remaining excess is reported as ``import_violation_kw``); then the inverter's reactive power
(in a Var market; 0 otherwise) is clipped into the envelope's ``[q_min_kvar, q_max_kvar]``
intersected with the capability left after the active power (both contain 0, so the
intersection is never empty). The active part is :func:`agents.projection.project_active`
(array-based). The P2P order is a share of the resulting net position, so every order lies
inside the envelope by construction; it is formed by :func:`agents.orders.form_orders`
(side, minimum quantity, side-relative price).
"""

from __future__ import annotations

from dataclasses import dataclass

from agents.battery import Battery
from agents.orders import SIDE_NAMES, Side, form_orders
from agents.policy import Action, Observation
from agents.projection import clip_q_inverter, project_active


@dataclass(frozen=True)
class Plan:
    """A prosumer's physical set-points and market order for one interval."""

    battery_p_kw: float
    pv_used_kw: float
    p_kw: float  # net active injection at the bus: pv_used - load + battery
    q_inverter_kvar: float
    q_kvar: float  # net reactive injection at the bus: q_inverter - load_q
    order_side: Side
    order_kwh: float
    limit_price_eur_per_kwh: float
    import_violation_kw: float
    next_soc_kwh: float


def plan_interval(
    action: Action,
    obs: Observation,
    battery: Battery,
    load_q_kvar: float,
    duration_h: float,
    network_charge_eur_per_kwh: float = 0.0,
) -> Plan:
    """Feasible plan for ``action`` given the observation (see the module docstring)."""
    s_kva = obs.inverter_kva
    active = project_active(
        action.battery,
        obs.pv_kw,
        obs.load_kw,
        obs.soc_kwh,
        battery.capacity_kwh,
        battery.power_kw,
        battery.efficiency,
        s_kva,
        obs.export_kw,
        obs.import_kw,
        duration_h,
    )
    b_kw, pv_kw, p_kw = float(active.battery_p_kw), float(active.pv_used_kw), float(active.p_kw)
    q_inv = float(
        clip_q_inverter(
            action.q, s_kva, pv_kw + b_kw, obs.q_min_kvar, obs.q_max_kvar, obs.var_market
        )
    )

    orders = form_orders(
        p_kw if obs.p2p_market else 0.0,
        obs.export_kw,
        obs.import_kw,
        action.trade,
        action.price,
        obs.retail_eur_per_kwh,
        obs.feed_in_eur_per_kwh,
        duration_h,
        network_charge_eur_per_kwh,
    )
    return Plan(
        battery_p_kw=b_kw,
        pv_used_kw=pv_kw,
        p_kw=p_kw,
        q_inverter_kvar=q_inv,
        q_kvar=q_inv - load_q_kvar,
        order_side=SIDE_NAMES[int(orders.side)],
        order_kwh=float(orders.quantity_kwh),
        limit_price_eur_per_kwh=float(orders.limit_price_eur_per_kwh),
        import_violation_kw=float(active.import_violation_kw),
        next_soc_kwh=float(active.next_soc_kwh),
    )
