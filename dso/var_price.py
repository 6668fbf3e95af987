"""Var prices from loss sensitivities, and the Var settlement rules (``docs/grid.md``).

Two rules, selected by :class:`VarPricing`:

- ``ex-post`` (default): each inverter's reactive power ``q_k`` at bus ``i`` is paid
  ``-lambda_t * dP_loss/dq_i * q_k * dt`` with the sensitivity at the settled power flow:
  symmetric (reactive power that raises the loss is charged), and by convexity of the loss
  in ``q`` the DSO's net payment never exceeds the value of the loss saved against every
  inverter at ``q = 0``;
- ``ex-ante`` (today's rule, kept for comparison): ``price_i * max(q_k, 0) * dt`` with the
  price ``lambda_t * max(0, -dP_loss/dq_i)`` published before the interval.

Before the interval every prosumer observes an indicative price at its bus (the ex-ante
price; with ``ex-post`` the signed ``-lambda_t * dP_loss/dq_i`` at the forecast point).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from dso.errors import InvalidInput
from dso.powerflow import PowerFlowResult, RadialPowerFlow
from dso.sensitivity import sensitivities_at


class VarPricing(StrEnum):
    """The Var settlement rules (see the module docstring)."""

    EX_ANTE = "ex-ante"
    EX_POST = "ex-post"


def _energy_price(energy_price_eur_per_kwh: float | np.ndarray) -> np.ndarray:
    price = np.asarray(energy_price_eur_per_kwh, dtype=float)
    if not (np.isfinite(price).all() and (price >= 0).all()):
        raise InvalidInput(
            f"energy_price_eur_per_kwh must be finite and >= 0, got {energy_price_eur_per_kwh!r}"
        )
    return price


def _duration(duration_h: float) -> float:
    if not (math.isfinite(duration_h) and duration_h > 0):
        raise InvalidInput(f"duration_h must be finite and > 0, got {duration_h!r}")
    return float(duration_h)


def var_prices(
    dloss_dq: np.ndarray, energy_price_eur_per_kwh: float, *, signed: bool = False
) -> np.ndarray:
    """Var price per bus (EUR/kvarh) from ``dloss_dq`` (kW/kvar) and the energy price.

    ``lambda * max(0, -dloss_dq)``; with ``signed`` the loss value itself,
    ``-lambda * dloss_dq`` (negative where injecting raises the loss).
    """
    value = -_energy_price(energy_price_eur_per_kwh) * np.asarray(dloss_dq, dtype=float)
    return value if signed else np.maximum(0.0, value)


def var_payment_eur(
    price_eur_per_kvarh: np.ndarray, q_kvar: np.ndarray, duration_h: float
) -> np.ndarray:
    """Ex-ante payment to each prosumer (EUR) for its reactive injection over the interval.

    ``price * max(q_kvar, 0) * duration_h``: injected vars (q > 0) are paid at the bus
    price; absorbed vars are neither paid nor charged.
    """
    duration_h = _duration(duration_h)
    price = np.asarray(price_eur_per_kvarh, dtype=float)
    q = np.asarray(q_kvar, dtype=float)
    if price.shape != q.shape:
        raise InvalidInput(f"price_eur_per_kvarh {price.shape} and q_kvar {q.shape} differ")
    return price * np.maximum(q, 0.0) * duration_h


@dataclass(frozen=True)
class VarSettlement:
    """Var settlement of one interval (or a batch: leading axes kept)."""

    payment_eur: np.ndarray  # (..., n_prosumer) paid to each prosumer (negative: charged)
    loss_kw: np.ndarray  # (...,) at the settled operating point
    loss_saved_kw: np.ndarray  # (...,) loss with every inverter at q = 0, minus loss_kw
    power_flow: PowerFlowResult  # the settled power flow ((..., n_bus) arrays)


def var_service_kvar(q_kvar: np.ndarray, own_q_kvar: np.ndarray) -> np.ndarray:
    """The Var service of scheduled net reactive injections ``q_kvar``: what they inject
    above the prosumers' own reactive demand (``own_q_kvar``, its injection, <= 0), i.e. the
    inverters' reactive power."""
    return q_kvar - own_q_kvar


def settle_var(
    pf: RadialPowerFlow,
    p_bus_kw: np.ndarray,
    q_bus_kvar: np.ndarray,
    prosumer_bus: np.ndarray,
    q_inverter_kvar: np.ndarray,
    energy_price_eur_per_kwh: float | np.ndarray,
    duration_h: float,
    *,
    pricing: str,
    ex_ante_price_eur_per_kvarh: np.ndarray | None = None,
) -> VarSettlement:
    """Settle the inverters' reactive power at the settled operating point.

    ``p_bus_kw``/``q_bus_kvar``: settled bus injections ``(n_bus,)`` or ``(B, n_bus)``, the
    inverters' ``q_inverter_kvar`` ``(n_prosumer,)`` or ``(B, n_prosumer)`` included;
    ``prosumer_bus`` ``(n_prosumer,)``; ``energy_price_eur_per_kwh`` scalar or ``(B,)``.
    The counterfactual takes every ``q_inverter_kvar`` out of ``q_bus_kvar``. ``pricing``:
    one of :class:`VarPricing`; ``ex-ante`` needs the published price per prosumer.
    """
    if pricing not in tuple(VarPricing):
        raise InvalidInput(f"pricing={pricing!r} is not one of {', '.join(VarPricing)}")
    duration_h = _duration(duration_h)
    lam = _energy_price(energy_price_eur_per_kwh)
    p = np.asarray(p_bus_kw, dtype=float)
    q = np.asarray(q_bus_kvar, dtype=float)
    q_inv = np.asarray(q_inverter_kvar, dtype=float)
    batch = p.shape[:-1]
    q_cf = q.copy()
    bus_of = np.zeros((len(prosumer_bus), q.shape[-1]))
    bus_of[np.arange(len(prosumer_bus)), prosumer_bus] = 1.0
    q_cf -= q_inv @ bus_of
    n_bus = p.shape[-1]
    both_p = np.concatenate([p.reshape(-1, n_bus), p.reshape(-1, n_bus)])
    both_q = np.concatenate([q.reshape(-1, n_bus), q_cf.reshape(-1, n_bus)])
    rows = both_p.shape[0] // 2
    if pricing == "ex-post":
        res = pf.solve(both_p, both_q)
        loss = res.loss_kw
        # the adjoint at the settled rows only (the counterfactual needs just its loss)
        settled_rows = PowerFlowResult(
            **{k: v if k == "iterations" else v[:rows] for k, v in vars(res).items()}
        )
        lsf = sensitivities_at(pf, settled_rows, both_p[:rows], both_q[:rows])
        dloss_dq = lsf.dloss_dq[:, prosumer_bus].reshape((*batch, len(prosumer_bus)))
        lam_b = lam[..., None] if lam.ndim else lam
        payment = -lam_b * dloss_dq * q_inv * duration_h
    else:
        if ex_ante_price_eur_per_kvarh is None:
            raise InvalidInput("pricing='ex-ante' needs ex_ante_price_eur_per_kvarh")
        res = pf.solve(both_p, both_q)
        loss = res.loss_kw
        payment = var_payment_eur(ex_ante_price_eur_per_kvarh, q_inv, duration_h)
    fields = {
        name: value if name == "iterations" else value[:rows].reshape((*batch, *value.shape[1:]))
        for name, value in vars(res).items()
    }
    settled = PowerFlowResult(**fields)
    loss_kw = loss[:rows].reshape(batch)
    loss_saved = loss[rows:].reshape(batch) - loss_kw
    return VarSettlement(payment, loss_kw, loss_saved, settled)
