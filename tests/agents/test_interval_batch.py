"""One interval's rules, one prosumer against a batch: the prosumer agent calls them on
records of numbers, the vectorised environment on records of arrays (worlds x prosumers).
Each batch result must equal, bit for bit, the one-prosumer result at every element."""

import dataclasses

import numpy as np
import pytest

from agents.battery import Battery
from agents.outlook import Outlook
from agents.plan import plan_interval
from agents.policy import (
    ABSTAIN,
    BASE_OBS_DIM,
    OBS_DIM,
    ExternalPolicy,
    Observation,
    observation_vector,
    played_action,
    played_actions,
)
from agents.settlement import (
    NO_TRADES,
    final_storage_eur,
    last_price_eur_per_kwh,
    p2p_totals,
    settle_bill,
)

SHAPE = (3, 5)  # worlds x prosumers
CHARGE, HOURS = 0.02, 0.5


def _batch(rng: np.random.Generator, p2p: bool = True) -> tuple[Observation, Battery]:
    """A batch observation and batteries, some prosumers without a battery."""
    n = SHAPE[1]
    capacity = rng.uniform(5, 20, n) * (rng.random(n) < 0.7)

    def u(lo: float, hi: float) -> np.ndarray:
        return rng.uniform(lo, hi, SHAPE)

    obs = Observation(
        hour_of_day=13.0,
        load_kw=u(0, 40),
        load_q_kvar=u(0, 10),
        pv_kw=u(0, 60),
        soc_kwh=capacity * rng.random(SHAPE),
        battery_kwh=capacity,
        battery_kw=capacity / 2,
        inverter_kva=rng.uniform(10, 60, n),
        export_kw=u(0, 30),
        import_kw=u(0, 30),
        q_min_kvar=u(-20, 0),
        q_max_kvar=u(0, 20),
        var_price_eur_per_kvarh=u(-0.01, 0.02),
        retail_eur_per_kwh=rng.uniform(0.2, 0.35, (SHAPE[0], 1)),
        feed_in_eur_per_kwh=rng.uniform(0.03, 0.08, (SHAPE[0], 1)),
        last_price_eur_per_kwh=u(0.05, 0.3),
        last_vm_pu=u(0.95, 1.05),
        p2p_market=p2p,
        var_market=True,
    )
    return obs, Battery(capacity, capacity / 2, rng.uniform(0.9, 0.97, n))


def _outlook(rng: np.random.Generator) -> Outlook:
    """A batch outlook: per prosumer, the tariff's per world."""

    def u(hi: float) -> np.ndarray:
        return rng.uniform(0, hi, SHAPE)

    tariff = rng.uniform(0.1, 0.4, (3, SHAPE[0], 1))
    return Outlook(
        pv_kwp=rng.uniform(0, 50, SHAPE[1]),
        pv_next_1h_kw=u(40), pv_next_3h_kw=u(40), pv_next_4_9h_kw=u(40),
        load_next_1h_kw=u(30), load_next_3h_kw=u(30), load_next_4_9h_kw=u(30),
        pv_rest_kwh=u(300), load_rest_kwh=u(300),
        retail_next_eur_per_kwh=tariff[0],
        retail_max_ahead_eur_per_kwh=tariff.max(axis=0),
        retail_min_ahead_eur_per_kwh=tariff.min(axis=0),
        interval_of_day=13,
        intervals_per_day=24,
    )  # fmt: skip


def _one(record, idx: tuple[int, int]):
    """Element ``idx`` of a batch record, as the record of one prosumer (plain numbers)."""
    fields = {}
    for f in dataclasses.fields(record):
        value = getattr(record, f.name)
        if isinstance(value, np.ndarray):
            value = float(np.broadcast_to(value, SHAPE)[idx])
        fields[f.name] = value
    return type(record)(**fields)


def _actions(rng: np.random.Generator) -> np.ndarray:
    """Policy outputs, some out of range and some malformed (a NaN or an infinity)."""
    out = rng.uniform(-1.5, 1.5, (*SHAPE, 4)).astype(np.float32)
    out[0, 1, 2] = np.nan
    out[2, 3, 0] = np.inf
    return out


def test_played_actions_of_a_batch_are_each_prosumers() -> None:
    outputs = _actions(np.random.default_rng(0))
    batch, abstained = played_actions(outputs)
    assert abstained.sum() == 2
    for idx in np.ndindex(SHAPE):
        policy = ExternalPolicy()
        policy.set(outputs[idx])
        one, error = played_action(policy, None)  # type: ignore[arg-type]
        assert bool(error) == abstained[idx]
        assert _one(batch, idx) == one
        if error:
            assert one == ABSTAIN and "is not a finite number" in error


@pytest.mark.parametrize("p2p", [True, False])
def test_observation_and_plan_of_a_batch_are_each_prosumers(p2p: bool) -> None:
    rng = np.random.default_rng(1)
    obs, battery = _batch(rng, p2p)
    outlook = _outlook(rng)
    features = observation_vector(obs, outlook)
    assert features.shape == (*SHAPE, OBS_DIM)
    assert np.array_equal(observation_vector(obs), features[..., :BASE_OBS_DIM])
    action, _ = played_actions(_actions(rng))
    plan = plan_interval(action, obs, battery, HOURS, CHARGE)
    assert np.asarray(plan.order_side).shape == SHAPE
    sides = set()
    for idx in np.ndindex(SHAPE):
        one_obs = _one(obs, idx)
        assert np.array_equal(one_obs.to_vector(_one(outlook, idx)), features[idx])
        batteries = _one(Battery(*(np.broadcast_to(v, SHAPE) for v in (
            battery.capacity_kwh, battery.power_kw, battery.efficiency
        ))), idx)  # fmt: skip
        one = plan_interval(_one(action, idx), one_obs, batteries, HOURS, CHARGE)
        assert one == _one(plan, idx), idx
        sides.add(one.order_side)
    assert sides == ({0, 1, 2} if p2p else {0})  # every side code met (none, buy, sell)


def test_trades_price_and_bill_of_a_batch_are_each_prosumers() -> None:
    rng = np.random.default_rng(2)
    obs, _ = _batch(rng)
    n_trades = 12
    world = rng.integers(0, SHAPE[0], n_trades)
    buyer, seller = rng.integers(0, 2, n_trades), rng.integers(2, SHAPE[1], n_trades)
    quantity, price = rng.uniform(0.01, 5, n_trades), rng.uniform(0.05, 0.3, n_trades)
    flat = SHAPE[1] * world
    batch = p2p_totals(flat + buyer, flat + seller, quantity, price, SHAPE)
    p_kw = rng.uniform(-20, 20, SHAPE)
    var_eur = rng.uniform(-0.1, 0.1, SHAPE)
    soc_start, soc_end = rng.uniform(0, 10, SHAPE), rng.uniform(0, 10, SHAPE)
    last_price = last_price_eur_per_kwh(batch, obs.last_price_eur_per_kwh)
    for last in (False, True):
        storage = final_storage_eur(last, soc_start, soc_end, 0.2)
        bill = settle_bill(p_kw, batch, var_eur, obs, CHARGE, storage, HOURS)
        for idx in np.ndindex(SHAPE):
            w, i = idx
            # as the prosumer agent sums its own trades: party 0 itself, 1 its counterparties
            own = [k for k in range(n_trades) if world[k] == w and i in (buyer[k], seller[k])]
            one = NO_TRADES
            if own:
                one = p2p_totals(
                    (buyer[own] != i).astype(int),
                    (seller[own] != i).astype(int),
                    quantity[own],
                    price[own],
                    (2,),
                ).at(0)
            assert one == _one(batch, idx)
            one_obs = _one(obs, idx)
            assert last_price_eur_per_kwh(one, one_obs.last_price_eur_per_kwh) == (last_price[idx])
            one_storage = final_storage_eur(last, float(soc_start[idx]), float(soc_end[idx]), 0.2)
            one_bill = settle_bill(
                float(p_kw[idx]), one, float(var_eur[idx]), one_obs, CHARGE, one_storage, HOURS
            )
            assert one_bill == _one(bill, idx)
            assert one_bill.bill_eur == np.asarray(bill.bill_eur)[idx]
            assert (one_bill.storage_eur != 0.0) == last
    # someone bought, someone sold, someone did neither
    assert {bool(v) for v in batch.paid_eur.ravel()} == {True, False}
    assert (batch.received_eur > 0).any()
