"""The DSO's typed per-interval outcome; its fields are the DSO's columns of the
``intervals`` result table (``analysis/tables.py`` names units and meanings)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np

#: A figure of one interval (a number) or of a batch of intervals (an array).
Figure = TypeVar("Figure", float, np.ndarray)


def loss_eur(loss_kw: Figure, duration_h: float, retail_eur_per_kwh: Figure) -> Figure:
    """The money value of a loss (or of a loss saved) over an interval, at the retail tariff."""
    return loss_kw * duration_h * retail_eur_per_kwh


def dso_net_eur(loss_saved_eur: Figure, network_charge_eur: Figure, var_paid_eur: Figure) -> Figure:
    """The DSO's net of an interval: the loss saved plus the P2P network charges it collects,
    minus the Var payments."""
    return loss_saved_eur + network_charge_eur - var_paid_eur


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
