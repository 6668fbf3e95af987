"""Ex-post Var settlement: the DSO never pays more than the value of the loss it saves.

By convexity of the loss in the inverters' reactive power, ``L(0) >= L(q) - grad L(q) . q``,
so the ex-post payments ``-lambda * dt * grad L(q) . q`` are at most ``lambda * dt *
(L(0) - L(q))`` (``docs/grid.md``). Checked over random operating points drawn like a random
policy on both feeders (and, in ``tests/abm/test_settlement_rules.py``, over whole random-policy
runs), against pandapower for the counterfactual loss, and batched against one by one.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dso.networks import Feeder
from dso.powerflow import RadialPowerFlow
from dso.reference import PandapowerReference
from dso.sensitivity import loss_sensitivities
from dso.var_price import settle_var, var_prices

#: Money tolerance of the bound (EUR): the power flow's noise on a loss difference.
BOUND_TOL_EUR = 1e-9
PRICE_EUR_PER_KWH = 0.25
#: Inverter rating per kW of base-case load, as the default scenario (4 kWp/kW, 1.1 kVA/kWp).
INVERTER_KVA_PER_KW = 4.4


def _random_point(
    feeder: Feeder, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bus injections and inverter q of a random policy: every loaded bus a prosumer whose
    inverter (half of them with PV) takes a random share of its rating, active and reactive."""
    rng = np.random.default_rng(seed)
    buses = np.flatnonzero(feeder.load_p_kw > 0)
    buses = buses[buses != feeder.slack_bus]
    s_kva = INVERTER_KVA_PER_KW * feeder.load_p_kw[buses]
    p_inv = rng.uniform(-0.5, 1.0, len(buses)) * s_kva * (rng.random(len(buses)) < 0.5)
    q_room = np.sqrt(s_kva**2 - p_inv**2)
    q_inv = rng.uniform(-1.0, 1.0, len(buses)) * q_room
    load = rng.uniform(0.2, 1.0, len(buses))
    p_bus = np.zeros(feeder.n_bus)
    q_bus = np.zeros(feeder.n_bus)
    p_bus[buses] = p_inv - load * feeder.load_p_kw[buses]
    q_bus[buses] = q_inv - load * feeder.load_q_kvar[buses]
    return p_bus, q_bus, buses, q_inv


def _scaled(feeder: Feeder, pf: RadialPowerFlow, seed: int, scale: float):
    p_bus, q_bus, buses, q_inv = _random_point(feeder, seed)
    q_load = q_bus.copy()
    q_load[buses] -= q_inv
    return p_bus, q_load + scale * (q_bus - q_load), buses, scale * q_inv


# The fixtures are read-only (a feeder and its solver), so sharing them across examples is safe.
@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(0.05, 1.0))
def test_dso_net_var_payment_never_exceeds_the_loss_saved(
    pf: RadialPowerFlow, feeder: Feeder, seed: int, scale: float
) -> None:
    p_bus, q_bus, buses, q_inv = _scaled(feeder, pf, seed, scale)
    var = settle_var(pf, p_bus, q_bus, buses, q_inv, PRICE_EUR_PER_KWH, 1.0, pricing="ex-post")
    margin = PRICE_EUR_PER_KWH * float(var.loss_saved_kw) - float(var.payment_eur.sum())
    assert margin >= -BOUND_TOL_EUR


def test_one_sided_rule_breaks_the_bound(pf: RadialPowerFlow, feeder: Feeder) -> None:
    """Today's rule (forecast price times injected q) pays injections past the loss minimum;
    the ex-post rule charges them."""
    p_bus, q_bus, buses, q_inv = _random_point(feeder, 0)
    q_load = q_bus.copy()
    q_load[buses] -= q_inv
    forecast = loss_sensitivities(pf, p_bus, q_load)  # the published price: every q at 0
    price = var_prices(forecast.dloss_dq, PRICE_EUR_PER_KWH)[buses]
    full = INVERTER_KVA_PER_KW * feeder.load_p_kw[buses]  # inject the whole rating
    q_full = q_load.copy()
    q_full[buses] += full
    margins = {}
    for pricing in ("ex-ante", "ex-post"):
        var = settle_var(
            pf,
            p_bus,
            q_full,
            buses,
            full,
            PRICE_EUR_PER_KWH,
            1.0,
            pricing=pricing,
            ex_ante_price_eur_per_kvarh=price,
        )
        margins[pricing] = PRICE_EUR_PER_KWH * float(var.loss_saved_kw) - var.payment_eur.sum()
    assert margins["ex-ante"] < 0 <= margins["ex-post"]


def test_batched_settlement_equals_one_by_one(pf: RadialPowerFlow, feeder: Feeder) -> None:
    points = [_scaled(feeder, pf, seed, 0.5) for seed in range(3)]
    buses = points[0][2]
    batch = settle_var(
        pf,
        np.stack([p[0] for p in points]),
        np.stack([p[1] for p in points]),
        buses,
        np.stack([p[3] for p in points]),
        np.array([0.1, 0.2, 0.3]),
        0.5,
        pricing="ex-post",
    )
    for b, (p_bus, q_bus, _, q_inv) in enumerate(points):
        one = settle_var(pf, p_bus, q_bus, buses, q_inv, 0.1 * (b + 1), 0.5, pricing="ex-post")
        np.testing.assert_allclose(batch.payment_eur[b], one.payment_eur, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(batch.loss_saved_kw[b], one.loss_saved_kw, atol=1e-9)
        np.testing.assert_allclose(batch.power_flow.vm_pu[b], one.power_flow.vm_pu, atol=1e-12)


def test_counterfactual_loss_matches_pandapower(
    pf: RadialPowerFlow, feeder: Feeder, ref: PandapowerReference
) -> None:
    p_bus, q_bus, buses, q_inv = _scaled(feeder, pf, 7, 0.5)
    var = settle_var(pf, p_bus, q_bus, buses, q_inv, PRICE_EUR_PER_KWH, 1.0, pricing="ex-post")
    q_cf = q_bus.copy()
    q_cf[buses] -= q_inv
    settled, counterfactual = ref.solve(p_bus, q_bus), ref.solve(p_bus, q_cf)
    assert float(var.loss_kw) == pytest.approx(settled.loss_kw, abs=1e-4)
    assert float(var.loss_saved_kw) == pytest.approx(
        counterfactual.loss_kw - settled.loss_kw, abs=2e-4
    )
