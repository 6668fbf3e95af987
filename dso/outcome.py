"""The DSO's typed per-interval outcome; its fields are the DSO's columns of the
``intervals`` result table (``analysis/tables.py`` names units and meanings)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class IntervalOutcome:
    """The network and market figures of one settled interval (an ``intervals`` row)."""

    interval: int
    loss_kw: float
    loss_cost_eur: float
    vmin_pu: float
    vmin_bus: int
    vmax_pu: float
    vmax_bus: int
    n_voltage_violations: int
    max_loading_percent: float
    retail_eur_per_kwh: float
    feed_in_eur_per_kwh: float
    loss_saved_kw: float
    loss_saved_eur: float
    var_paid_eur: float
    var_service_kvarh: float
    p2p_volume_kwh: float
    envelope_violations: int
    export_envelope_feasible: bool
    import_envelope_feasible: bool
    absent_prosumers: int
