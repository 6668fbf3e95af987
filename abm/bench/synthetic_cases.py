"""Synthetic injections and prosumer sets of a feeder, for validation tests and benchmarks.

Not a market scenario (that is ``abm/inputs/scenario.py``): just reproducible operating points,
including strong reverse flow, built from the feeder's own base-case loads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dso.networks import Feeder

#: Ranges of the random operating points (multiples of each bus's base-case load).
LOAD_SCALE = (0.0, 1.3)
Q_SCALE = (-0.5, 1.3)  # below 0: the bus injects reactive power
PV_SCALE = (0.0, 3.0)  # PV up to 3x the bus load: strong reverse flow


def random_injections(
    feeder: Feeder, n_scenarios: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``(p_kw, q_kvar)`` of shape ``(n_scenarios, n_bus)``: scaled loads and random PV.

    Every loaded bus draws its load scale and PV (as multiples of its base-case load)
    independently, so scenarios range from heavy import to strong reverse flow.
    """
    shape = (n_scenarios, feeder.n_bus)
    load_p, load_q = feeder.load_p_kw, feeder.load_q_kvar
    pv_kw = load_p * rng.uniform(*PV_SCALE, shape)
    p_kw = pv_kw - load_p * rng.uniform(*LOAD_SCALE, shape)
    q_kvar = -load_q * rng.uniform(*Q_SCALE, shape)
    return p_kw, q_kvar


@dataclass(frozen=True)
class ProsumerCase:
    """One prosumer per loaded bus and the forecast of everything else, for envelopes."""

    prosumer_bus: np.ndarray  # (n_prosumer,)
    pv_kwp: np.ndarray  # (n_prosumer,) fairness weights of the "proportional" rule
    max_export_kw: np.ndarray
    max_import_kw: np.ndarray
    p_other_kw: np.ndarray  # (n_bus,)
    q_other_kvar: np.ndarray  # (n_bus,)


def prosumer_case(
    feeder: Feeder, passive_share: float = 0.5, pv_ratio: float = 2.0, import_ratio: float = 1.0
) -> ProsumerCase:
    """Prosumers at every loaded bus; ``passive_share`` of each bus load stays uncontrolled.

    A prosumer's PV is ``pv_ratio`` times its bus load (its export maximum and its
    proportional-fairness weight); its import maximum is ``import_ratio`` times that load.
    Reactive power stays at the base-case loads' (scaled by ``passive_share``).
    """
    bus = np.flatnonzero(feeder.load_p_kw > 0)
    bus = bus[bus != feeder.slack_bus]
    p_base, q_base = feeder.base_injection()
    load_kw = feeder.load_p_kw[bus]
    return ProsumerCase(
        prosumer_bus=bus,
        pv_kwp=pv_ratio * load_kw,
        max_export_kw=pv_ratio * load_kw,
        max_import_kw=import_ratio * load_kw,
        p_other_kw=passive_share * p_base,
        q_other_kvar=passive_share * q_base,
    )
