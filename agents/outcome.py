"""A prosumer's typed per-interval outcomes; their fields are the columns of the
``prosumers`` and ``trades`` result tables (``analysis/tables.py`` names units and meanings)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ProsumerOutcome:
    """What one prosumer did and paid in one interval (a ``prosumers`` row)."""

    interval: int
    prosumer: str
    bus: int
    load_kw: float
    pv_kw: float
    pv_used_kw: float
    battery_p_kw: float
    soc_kwh: float
    p_kw: float
    q_kvar: float
    q_inverter_kvar: float
    export_limit_kw: float
    import_limit_kw: float
    q_min_limit_kvar: float
    q_max_limit_kvar: float
    import_violation_kw: float
    var_price_eur_per_kvarh: float
    order_side: str
    order_kwh: float
    limit_price_eur_per_kwh: float
    p2p_bought_kwh: float
    p2p_sold_kwh: float
    p2p_eur: float
    retail_eur: float
    var_eur: float
    network_eur: float
    storage_eur: float
    bill_eur: float
    vm_pu: float
    action_error: str
    policy_fallback: str


@dataclass(frozen=True, slots=True)
class TradeOutcome:
    """One final trade as a prosumer records it (a ``trades`` row)."""

    interval: int
    buyer: str
    seller: str
    quantity_kwh: float
    price_eur_per_kwh: float
    reported_by: str
