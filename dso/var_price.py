"""Var prices from loss sensitivities, and the Var payment they imply (``docs/grid.md``).

``price_q_i = lambda_t * max(0, -dP_loss/dq_i)`` EUR/kvarh: reactive power injected at bus
``i`` is worth the active loss it saves, valued at the interval's energy price
``lambda_t`` (EUR/kWh). Where injecting vars would raise the loss the price is 0.
"""

from __future__ import annotations

import math

import numpy as np

from dso.errors import InvalidInput


def var_prices(dloss_dq: np.ndarray, energy_price_eur_per_kwh: float) -> np.ndarray:
    """Var price per bus (EUR/kvarh) from ``dloss_dq`` (kW/kvar) and the energy price."""
    price = float(energy_price_eur_per_kwh)
    if not (math.isfinite(price) and price >= 0):
        raise InvalidInput(f"energy_price_eur_per_kwh must be finite and >= 0, got {price!r}")
    return price * np.maximum(0.0, -np.asarray(dloss_dq, dtype=float))


def var_payment_eur(
    price_eur_per_kvarh: np.ndarray, q_kvar: np.ndarray, duration_h: float
) -> np.ndarray:
    """Payment to each prosumer (EUR) for its reactive injection over the interval.

    ``price * max(q_kvar, 0) * duration_h``: injected vars (q > 0) are paid at the bus
    price; absorbed vars are neither paid nor charged.
    """
    if not (math.isfinite(duration_h) and duration_h > 0):
        raise InvalidInput(f"duration_h must be finite and > 0, got {duration_h!r}")
    price = np.asarray(price_eur_per_kvarh, dtype=float)
    q = np.asarray(q_kvar, dtype=float)
    if price.shape != q.shape:
        raise InvalidInput(f"price_eur_per_kvarh {price.shape} and q_kvar {q.shape} differ")
    return price * np.maximum(q, 0.0) * duration_h
