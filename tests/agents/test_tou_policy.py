"""The time-of-use-aware rule policy: charge off-peak, keep the energy for the peak."""

from __future__ import annotations

import numpy as np
import pytest

from abm.inputs.scenario import Tariffs
from agents.errors import AgentError
from agents.policy import TRUTHFUL_PRICE, Observation, RulePolicy, TouPolicy
from tests.agents.test_plan import make_obs

#: The default tariff: night 23-07 (cheapest), peak 17-21 (dearest), day otherwise.
TOU = TouPolicy(Tariffs().retail_eur_per_kwh)


def _obs(hour: float, load_kw: float, pv_kw: float, **changes: float) -> Observation:
    """An observation with a 10 kWh, 5 kW battery half full (``make_obs`` otherwise)."""
    battery = {"soc_kwh": 5.0, "battery_kwh": 10.0, "battery_kw": 5.0}
    return make_obs(hour_of_day=hour, load_kw=load_kw, pv_kw=pv_kw, **{**battery, **changes})


@pytest.mark.parametrize("hour", [23, 0, 3, 6.5])
def test_off_peak_charges_at_full_power(hour: float) -> None:
    assert TOU.act(_obs(hour, load_kw=2.0, pv_kw=0.0))[0] == -1.0


@pytest.mark.parametrize("hour", [7, 12, 16])
def test_day_before_the_peak_keeps_the_energy_and_stores_surplus(hour: int) -> None:
    assert TOU.act(_obs(hour, load_kw=3.0, pv_kw=0.5))[0] == 0.0  # deficit: no discharge
    assert TOU.act(_obs(hour, load_kw=1.0, pv_kw=3.5))[0] == pytest.approx(-0.5)  # surplus


@pytest.mark.parametrize("hour", [17, 20, 21, 22])
def test_peak_and_after_it_self_consumption(hour: int) -> None:
    obs = _obs(hour, load_kw=3.0, pv_kw=0.5)
    assert TOU.act(obs)[0] == pytest.approx(0.5)
    np.testing.assert_array_equal(TOU.act(obs), RulePolicy().act(obs))


def test_orders_truthful_and_reactive_power_as_the_rule_policy() -> None:
    for hour in range(24):
        for vm in (0.94, 0.97, 1.0, 1.04):
            obs = _obs(hour, load_kw=2.0, pv_kw=1.0, last_vm_pu=vm)
            action, rule = TOU.act(obs), RulePolicy().act(obs)
            assert action[1] == 1.0 and action[2] == TRUTHFUL_PRICE
            assert action[3] == rule[3]


def test_without_battery_charges_nothing() -> None:
    obs = _obs(2, load_kw=2.0, pv_kw=0.0, battery_kw=0.0, battery_kwh=0.0, soc_kwh=0.0)
    assert TOU.act(obs)[0] == 0.0


def test_flat_tariff_is_the_rule_policy() -> None:
    flat = TouPolicy([0.2] * 24)
    for hour in range(24):
        obs = _obs(hour, load_kw=3.0, pv_kw=0.5 * (hour % 3))
        np.testing.assert_array_equal(flat.act(obs), RulePolicy().act(obs))


@pytest.mark.parametrize("prices", [[0.2] * 23, [0.2] * 23 + [float("nan")]])
def test_bad_tariff_refused(prices: list[float]) -> None:
    with pytest.raises(AgentError, match="retail_eur_per_kwh must be 24 finite numbers"):
        TouPolicy(prices)
