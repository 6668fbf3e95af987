"""Market rules a learner must not be able to exploit, checked on whole runs.

- Var support: with the ex-post rule the DSO's net (loss saved + network charge - Var paid)
  is never negative, whatever the policy; today's one-sided ex-ante rule is not so bounded.
- Orders: with truthful rule bids every auction trade clears at the mid tariff.
- Stored energy: emptying the battery in the last hours gains nothing beyond real arbitrage.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest

from abm.config import SimConfig
from abm.envs.pettingzoo_env import MarketParallelEnv
from abm.inputs.run_inputs import build_run_inputs
from abm.inputs.scenario import Tariffs, scenario_for
from abm.sim.model import MarketModel
from agents.policy import Observation, RulePolicy
from dso.networks import load_network

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


class _LastHours:
    """The rule policy with the battery idle, but from ``LAST_HOURS_FROM`` on at ``battery``
    (0: keep the stored energy, 1: empty the battery)."""

    def __init__(self, battery: float) -> None:
        self.battery = battery
        self.rule = RulePolicy()

    def act(self, obs: Observation) -> np.ndarray:
        action = self.rule.act(obs)
        action[0] = self.battery if obs.hour_of_day >= LAST_HOURS_FROM else 0.0
        return action


def _run(battery: float, tariffs: Tariffs | None) -> tuple[pd.DataFrame, pd.Series]:
    """Prosumer rows of one grid-only day, and the retail tariff by interval."""
    config = SimConfig(market="grid-only")
    feeder = load_network(config.network)
    world = build_run_inputs(config, feeder=feeder, scenario=scenario_for(feeder, tariffs=tariffs))
    policies = {pid: _LastHours(battery) for pid in world.prosumer_ids}
    model = MarketModel(config, world=world, policies=policies)
    while not model.done:
        model.step()
    return model.tables()["prosumers"], pd.Series(world.forecast.retail_eur_per_kwh)


@pytest.mark.slow
@pytest.mark.parametrize("flat", [True, False], ids=["flat-tariff", "time-of-use"])
def test_emptying_the_battery_at_the_end_gains_nothing_beyond_arbitrage(flat: bool) -> None:
    """Per prosumer, emptying instead of holding gains at most the arbitrage of the extra
    energy ``e_t`` taken from the battery at interval t, ``sum_t eta e_t (retail_t - mean
    retail)`` (delivered at retail_t, valued at the end at eta x mean retail); 0 at a flat
    tariff. Grid-only, so one prosumer's bill does not depend on the others' actions."""
    tariffs = Tariffs((0.22,) * 24, (0.05,) * 24) if flat else None
    (keep, tariff), (empty, _) = _run(0.0, tariffs), _run(1.0, tariffs)
    gain = keep.groupby("prosumer")["bill_eur"].sum() - empty.groupby("prosumer")["bill_eur"].sum()
    soc_keep = keep.pivot(index="interval", columns="prosumer", values="soc_kwh")
    soc_empty = empty.pivot(index="interval", columns="prosumer", values="soc_kwh")
    taken = soc_keep - soc_empty  # extra energy taken from the battery up to interval t
    extra = taken.diff().fillna(taken)
    assert (taken.iloc[-1] >= 0).all() and taken.iloc[-1].sum() > 0  # some batteries emptied
    eta = empty.groupby("prosumer")["prosumer"].first().map(_efficiency())
    arbitrage = extra.mul(tariff - tariff.mean(), axis=0).sum() * eta
    assert (gain <= arbitrage + TOL_EUR * len(tariff)).all(), float((gain - arbitrage).max())
    if flat:
        assert gain.max() <= TOL_EUR * len(tariff)


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
