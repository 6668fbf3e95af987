"""Market rules a learner must not be able to exploit, checked on whole runs.

- Var support: with the ex-post rule the DSO's net (loss saved + network charge - Var paid)
  is never negative, whatever the policy; today's one-sided ex-ante rule is not so bounded.
- Orders: with truthful rule bids every auction trade clears at the mid tariff.
- Stored energy (valued at its replacement cost): emptying the battery in the last hours gains
  nothing beyond real arbitrage, charging it from the grid gains nothing at the cheapest tariff
  (a loss at a dearer one), and the bill, the vectorised env, the optimum and the MPC value it
  at one price.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest

from abm.config import SimConfig
from abm.envs.pettingzoo_env import MarketParallelEnv
from abm.envs.vec_env import MarketVecEnv
from abm.inputs.mpc_policies import mpc_policies
from abm.inputs.profiles import TEST_DAYS
from abm.inputs.run_inputs import build_run_inputs
from abm.inputs.scenario import Tariffs, scenario_for
from abm.optimum.lp import day_inputs
from abm.sim.model import MarketModel
from agents.forecast import PERFECT
from agents.policy import Observation, RulePolicy
from dso.networks import load_network
from dso.powerflow import RadialPowerFlow

#: Money tolerance per interval (EUR): float noise of the power flow and the sums.
TOL_EUR = 1e-9
#: Index of the first summer day in the test-day set (early July).
SUMMER_TEST_DAY = 36
#: Hour of the day from which the storage test's policies differ.
LAST_HOURS_FROM = 20


@functools.cache
def _tables(config: SimConfig) -> dict[str, pd.DataFrame]:
    model = MarketModel(config)
    while not model.done:
        model.step()
    return model.tables()


@pytest.mark.slow
@pytest.mark.parametrize("network", ["ieee33", "swiss161"])
def test_dso_net_is_never_negative_with_a_random_policy(network: str) -> None:
    config = SimConfig(network=network, market="var", policy="random", seed=3)
    iv = _tables(config)["intervals"]
    assert (iv["var_paid_eur"].abs() > 0).all()  # the Var market did settle something
    assert iv["dso_net_eur"].min() >= -TOL_EUR
    # The ex-post payment is never more than the loss saved (without the network charge).
    assert (iv["loss_saved_eur"] - iv["var_paid_eur"]).min() >= -TOL_EUR


@pytest.mark.slow
def test_ex_ante_rule_pays_more_than_the_loss_saved_with_a_random_policy() -> None:
    config = SimConfig(market="var", policy="random", seed=3, var_pricing="ex-ante")
    iv = _tables(config)["intervals"]
    assert (iv["loss_saved_eur"] - iv["var_paid_eur"]).min() < 0


@pytest.mark.slow
@pytest.mark.parametrize("network", ["ieee33", "swiss161"])
@pytest.mark.parametrize("first_day", [0, SUMMER_TEST_DAY], ids=["winter", "summer"])
def test_truthful_rule_bids_clear_at_the_mid_tariff(network: str, first_day: int) -> None:
    config = SimConfig(network=network, market="multi", first_day=first_day)
    tables = _tables(config)
    trades, iv = tables["trades"], tables["intervals"].set_index("interval")
    assert len(trades) > 0
    mid = (iv["retail_eur_per_kwh"] + iv["feed_in_eur_per_kwh"]) / 2
    np.testing.assert_allclose(trades["price_eur_per_kwh"], mid[trades["interval"]], atol=1e-12)
    orders = tables["prosumers"].query("order_side != 'none'")["order_kwh"]
    assert orders.min() >= 0.01  # no dust in the book


class _BatteryIn:
    """The rule policy with the battery idle, but at ``battery`` in ``hours`` of the day
    (1: discharge at full power, -1: charge at full power)."""

    def __init__(self, battery: float, hours: range) -> None:
        self.battery = battery
        self.hours = hours
        self.rule = RulePolicy()

    def act(self, obs: Observation) -> np.ndarray:
        action = self.rule.act(obs)
        action[0] = self.battery if obs.hour_of_day in self.hours else 0.0
        return action


@functools.cache
def _run(battery: float, hours: range, tariffs: Tariffs | None) -> tuple[pd.DataFrame, pd.Series]:
    """Prosumer rows of one grid-only (winter) day with :class:`_BatteryIn`, and the retail
    tariff by interval."""
    config = SimConfig(market="grid-only")
    feeder = load_network(config.network)
    world = build_run_inputs(config, feeder=feeder, scenario=scenario_for(feeder, tariffs=tariffs))
    policies = {pid: _BatteryIn(battery, hours) for pid in world.prosumer_ids}
    model = MarketModel(config, world=world, policies=policies)
    while not model.done:
        model.step()
    return model.tables()["prosumers"], pd.Series(world.forecast.retail_eur_per_kwh)


def _gain_and_stored(
    battery: float, hours: range, tariffs: Tariffs | None = None
) -> tuple[pd.Series, pd.DataFrame, pd.Series]:
    """Per prosumer, what the run with the battery at ``battery`` in ``hours`` saves against
    the idle battery (bill difference over the run), the extra energy it stored up to each
    interval (kWh, negative where it took energy out), and the retail tariff by interval."""
    idle, tariff = _run(0.0, range(0), tariffs)
    acted, _ = _run(battery, hours, tariffs)
    gain = idle.groupby("prosumer")["bill_eur"].sum() - acted.groupby("prosumer")["bill_eur"].sum()
    soc_idle = idle.pivot(index="interval", columns="prosumer", values="soc_kwh")
    soc_acted = acted.pivot(index="interval", columns="prosumer", values="soc_kwh")
    return gain, soc_acted - soc_idle, tariff


@pytest.mark.slow
@pytest.mark.parametrize("flat", [True, False], ids=["flat-tariff", "time-of-use"])
def test_emptying_the_battery_at_the_end_gains_nothing_beyond_arbitrage(flat: bool) -> None:
    """Per prosumer, emptying instead of holding gains at most the arbitrage of the extra
    energy ``e_t`` taken from the battery at interval t, ``sum_t e_t (eta retail_t - min
    retail / eta)`` (``eta e_t`` delivered at retail_t, each kWh valued at the end at its
    replacement cost ``min retail / eta``); a loss at a flat tariff (the round trip's).
    Grid-only, so one prosumer's bill does not depend on the others' actions."""
    tariffs = Tariffs((0.22,) * 24, (0.05,) * 24) if flat else None
    gain, stored, tariff = _gain_and_stored(1.0, range(LAST_HOURS_FROM, 24), tariffs)
    taken = -stored  # extra energy taken from the battery up to interval t
    extra = taken.diff().fillna(taken)
    assert (taken.iloc[-1] >= 0).all() and taken.iloc[-1].sum() > 0  # some batteries emptied
    eta = gain.index.to_series().map(_efficiency())
    arbitrage = (extra.mul(tariff, axis=0).sum() * eta) - taken.iloc[-1] * tariff.min() / eta
    assert (gain <= arbitrage + TOL_EUR * len(tariff)).all(), float((gain - arbitrage).max())
    if flat:
        assert (gain[taken.iloc[-1] > 0] < 0).all()


@pytest.mark.slow
@pytest.mark.parametrize("hour", [23, 20], ids=["cheapest-tariff", "peak-tariff"])
def test_charging_from_the_grid_at_the_end_gains_only_below_the_cheapest_tariff(
    hour: int,
) -> None:
    """Charging the battery from the grid in the run's last hours books no profit: each kWh
    bought at ``retail_t`` stores ``eta`` kWh, valued at the end at ``min retail / eta``, so
    the run with the charge saves exactly ``sum_t bought_t (min retail - retail_t)``: 0 at the
    cheapest tariff (23:00, off-peak), a loss at a dearer one (20:00, peak). A winter day:
    no PV in the evening, so every kWh charged is bought at retail."""
    gain, stored, tariff = _gain_and_stored(-1.0, range(hour, hour + 1))
    added = stored.diff().fillna(stored)
    assert (added.drop(index=hour, errors="ignore").abs().max() < 1e-12).all()
    assert added.loc[hour].sum() > 1.0  # the batteries did charge
    eta = gain.index.to_series().map(_efficiency())
    bought = added.loc[hour] / eta
    expected = bought * (tariff.min() - tariff[hour])
    np.testing.assert_allclose(gain, expected[gain.index], atol=TOL_EUR * len(tariff))
    if hour == 23:
        assert tariff[hour] == tariff.min()
        assert gain.abs().max() < TOL_EUR * len(tariff)
    else:
        assert tariff[hour] > tariff.min() and (gain[bought > 0] < 0).all()


def test_every_user_of_the_stored_energy_value_takes_the_settlements(tmp_path, monkeypatch) -> None:
    """The prosumer's bill, the vectorised env, the optimum's LP and the MPC value a stored kWh
    at one price: the default tariff's cheapest hour (0.12 EUR/kWh, 23:00-07:00) over the
    one-way efficiency (0.95), computed here by hand; a second formula anywhere fails this."""
    monkeypatch.setenv("P2PVAR_CACHE", str(tmp_path))
    config = SimConfig(market="multi")
    expected = 0.12 / 0.95
    model = MarketModel(config)
    world = model.world
    assert min(world.scenario.tariffs.retail_eur_per_kwh) == 0.12
    assert {p.battery_efficiency for p in world.scenario.prosumers} == {0.95}
    billed = [a.logic.storage_price_eur_per_kwh for a in model.prosumers]
    env = MarketVecEnv(2, config)
    env.reset(0, [TEST_DAYS[0], TEST_DAYS[SUMMER_TEST_DAY]])
    soc = np.zeros(len(world.prosumer_ids))
    lp = day_inputs(world, RadialPowerFlow(world.feeder), 0, soc).storage_price_eur_per_kwh
    mpc = mpc_policies(world, PERFECT)
    planned = [mpc(i, np.random.default_rng(0)).storage_price for i in range(len(soc))]
    for prices in (billed, env.storage_price, lp, planned):
        np.testing.assert_allclose(prices, expected, rtol=1e-15)


def _efficiency() -> dict[str, float]:
    scenario = scenario_for(load_network("ieee33"))
    return {p.prosumer_id: p.battery_efficiency for p in scenario.prosumers}


def test_stored_energy_term_reaches_the_rl_reward_at_episode_end() -> None:
    env = MarketParallelEnv(SimConfig(market="grid-only"), sample_days=False)
    env.reset(seed=0)
    rule = RulePolicy()
    rewards = []
    while env.agents:
        actions = {a.logic.agent_id: rule.act(a.logic.observe()) for a in env.model.prosumers}
        _, r, *_ = env.step(actions)
        rewards.append(r)
    pr = env.model.tables()["prosumers"]
    storage = pr.groupby("interval")["storage_eur"].sum()
    assert (storage.iloc[:-1] == 0).all() and storage.iloc[-1] != 0
    last = pr[pr["interval"] == pr["interval"].max()].set_index("prosumer")["bill_eur"]
    assert rewards[-1] == pytest.approx((-last).to_dict())
