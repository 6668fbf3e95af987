"""Var prices from loss sensitivities and the payments they imply."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dso.errors import InvalidInput
from dso.networks import load_network
from dso.powerflow import RadialPowerFlow
from dso.sensitivity import loss_sensitivities
from dso.var_price import var_payment_eur, var_prices


def test_price_is_energy_price_times_loss_saved_per_kvar() -> None:
    price = var_prices(np.array([-0.02, 0.0, 0.01, -0.005]), 0.25)
    np.testing.assert_allclose(price, [0.005, 0.0, 0.0, 0.00125])


def test_ieee33_prices_are_positive_at_loaded_buses() -> None:
    f = load_network("ieee33")
    lsf = loss_sensitivities(RadialPowerFlow(f), *f.base_injection())
    price = var_prices(lsf.dloss_dq, 0.3)
    assert price[f.slack_bus] == 0 and (price[f.load_p_kw > 0] > 0).all()
    assert int(np.argmax(price)) in (17, 32)  # the far ends of the two long branches


def test_payment_pays_injection_only() -> None:
    paid = var_payment_eur(np.array([0.01, 0.01, 0.02]), np.array([10.0, -5.0, 0.0]), 0.5)
    np.testing.assert_allclose(paid, [0.05, 0.0, 0.0])


@given(
    dq=arrays(float, 8, elements=st.floats(-1.0, 1.0)),
    energy=st.floats(0.0, 1.0),
    q=arrays(float, 8, elements=st.floats(-100.0, 100.0)),
)
def test_prices_and_payments_are_never_negative(
    dq: np.ndarray, energy: float, q: np.ndarray
) -> None:
    price = var_prices(dq, energy)
    assert (price >= 0).all()
    assert (var_payment_eur(price, q, 1.0) >= 0).all()


@pytest.mark.parametrize("energy", [-0.1, float("nan"), float("inf")])
def test_bad_energy_price_is_refused(energy: float) -> None:
    with pytest.raises(InvalidInput, match="energy_price_eur_per_kwh"):
        var_prices(np.zeros(3), energy)


def test_bad_payment_inputs_are_refused() -> None:
    with pytest.raises(InvalidInput, match="duration_h"):
        var_payment_eur(np.zeros(2), np.zeros(2), 0.0)
    with pytest.raises(InvalidInput, match="differ"):
        var_payment_eur(np.zeros(2), np.zeros(3), 1.0)
