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
(side, minimum quantity, side-relative price). The same function plans one prosumer (the
agent) and a batch of worlds x prosumers (the vectorised environment).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic

from agents.arrays import F, namespace
from agents.battery import Battery
from agents.orders import form_orders
from agents.policy import Action, Observation
from agents.projection import clip_q_inverter, project_active


@dataclass(frozen=True)
class Plan(Generic[F]):
    """A prosumer's physical set-points and market order for one interval (numbers), or a
    batch's (arrays)."""

    battery_p_kw: F
    pv_used_kw: F
    p_kw: F  # net active injection at the bus: pv_used - load + battery
    q_inverter_kvar: F
    q_kvar: F  # net reactive injection at the bus: q_inverter - load_q
    order_side: F  # a side code of agents.orders (SIDE_NAMES gives its name)
    order_kwh: F
    limit_price_eur_per_kwh: F
    import_violation_kw: F
    next_soc_kwh: F


def plan_interval(
    action: Action,
    obs: Observation,
    battery: Battery,
    duration_h: float,
    network_charge_eur_per_kwh: float = 0.0,
) -> Plan:
    """Feasible plan for ``action`` given the observation (see the module docstring): of one
    prosumer (records of numbers) or of a batch (records of arrays)."""
    active = project_active(action.battery, obs, battery, duration_h)
    b_kw, pv_kw, p_kw = active.battery_p_kw, active.pv_used_kw, active.p_kw
    q_inv = clip_q_inverter(action.q, obs, pv_kw + b_kw)
    xp = namespace(p_kw)
    orders = form_orders(
        xp.where(obs.p2p_market, p_kw, 0.0), action, obs, duration_h, network_charge_eur_per_kwh
    )
    return Plan(
        battery_p_kw=b_kw,
        pv_used_kw=pv_kw,
        p_kw=p_kw,
        q_inverter_kvar=q_inv,
        q_kvar=q_inv - obs.load_q_kvar,
        order_side=orders.side,
        order_kwh=orders.quantity_kwh,
        limit_price_eur_per_kwh=orders.limit_price_eur_per_kwh,
        import_violation_kw=active.import_violation_kw,
        next_soc_kwh=active.next_soc_kwh,
    )
