"""The in-process market: phases, modes, invariants, determinism, bad inputs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from abm.config import SimConfig
from abm.sim.model import MarketModel
from abm.sim.simulation import run_simulation
from agents.orders import SIDE_BUY, SIDE_SELL
from agents.settlement import BILL_PARTS
from messaging.messages import Bid, Offer
from tests.helpers import assert_conserved

TOL = 1e-9


@pytest.fixture(scope="module")
def multi_auction():
    return run_simulation(SimConfig(market="multi", protocol="auction"), progress=False)


def _trades_consistent(result) -> None:
    pr, tr = result.tables["prosumers"], result.tables["trades"]
    # Money and energy conservation: each trade once for buyer and seller, payments sum to 0.
    assert_conserved(result.tables)
    rows = pr.set_index(["interval", "prosumer"])
    assert rows["p2p_bought_kwh"].sum() == pytest.approx(rows["p2p_sold_kwh"].sum())
    # Every trade inside both parties' envelopes (1-hour intervals: kWh == kW).
    assert (rows["p2p_sold_kwh"] <= rows["export_limit_kw"] + TOL).all()
    assert (rows["p2p_bought_kwh"] <= rows["import_limit_kw"] + TOL).all()
    # Trade prices inside the tariff band.
    assert (tr["price_eur_per_kwh"] >= 0).all()


def test_one_day_multi_market_tables(multi_auction):
    t = multi_auction.tables
    assert len(t["intervals"]) == 24
    assert len(t["prosumers"]) == 24 * 32
    assert len(t["buses"]) == 24 * 33
    assert len(t["trades"]) > 0
    assert set(t["messages"]["kind"]) >= {"Envelopes", "VarPrices", "Phase", "Schedule"}
    _trades_consistent(multi_auction)
    pr = t["prosumers"]
    assert np.allclose(pr["bill_eur"], pr[list(BILL_PARTS)].sum(axis=1))
    # Schedules stay inside the export envelope; physical bounds hold.
    assert (pr["p_kw"] <= pr["export_limit_kw"] + 1e-6).all()
    q = pr["q_inverter_kvar"]
    assert ((pr["q_min_limit_kvar"] - 1e-9 <= q) & (q <= pr["q_max_limit_kvar"] + 1e-9)).all()
    assert (pr["pv_used_kw"] <= pr["pv_kw"] + 1e-9).all()
    assert (t["intervals"]["envelope_violations"] == 0).all() or (
        pr["import_violation_kw"].sum() > 0
    )


def test_bilateral_protocol_invariants():
    result = run_simulation(SimConfig(market="p2p", protocol="bilateral"), progress=False)
    assert len(result.tables["trades"]) > 0
    _trades_consistent(result)


@pytest.mark.parametrize("market", ["grid-only", "p2p", "var"])
def test_market_modes(market, multi_auction):
    result = run_simulation(SimConfig(market=market), progress=False)
    pr, tr = result.tables["prosumers"], result.tables["trades"]
    has_p2p = market == "p2p"
    has_var = market == "var"
    assert (len(tr) > 0) == has_p2p
    assert (pr["var_eur"].abs().sum() > 0) == has_var
    assert (pr["q_inverter_kvar"].abs().sum() > 0) == has_var
    if not has_p2p:
        assert (pr["order_side"] == "none").all()
    # The multi market trades and pays for Var support at once.
    mpr = multi_auction.tables["prosumers"]
    assert len(multi_auction.tables["trades"]) > 0 and mpr["var_eur"].abs().sum() > 0


def test_same_seed_same_results():
    cfg = SimConfig(market="multi", policy="random", seed=3)
    a = run_simulation(cfg, progress=False)
    b = run_simulation(cfg, progress=False)
    for name in ("intervals", "prosumers", "trades", "buses", "messages"):
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name])
    c = run_simulation(dataclasses.replace(cfg, seed=4), progress=False)
    assert not a.tables["prosumers"]["bill_eur"].equals(c.tables["prosumers"]["bill_eur"])


class Abstain:
    """A policy that never orders (trade share 0)."""

    def act(self, obs):
        return np.array([0.0, -1.0, 0.0, 0.0], np.float32)


def _model_at_orders(**kw) -> MarketModel:
    # p01 never orders itself, so an order forged in its name is its only order.
    model = MarketModel(SimConfig(market="p2p", **kw), policies={"p01": Abstain()})
    for _ in range(12):  # midday: sellers exist
        model.step()
    model.begin_interval()
    return model


def _trade_set(model: MarketModel) -> set[tuple]:
    return {
        (tr.buyer, tr.seller, round(tr.quantity_kwh, 9))
        for agent in model.prosumers
        for tr in agent.logic.last_trades
    }


def _midday_trades_with(inject=None) -> tuple[set[tuple], MarketModel]:
    """Trades of a midday interval, with ``inject(model)`` sending bad messages after decide."""
    model = _model_at_orders()
    model.run_ticks("orders")
    if inject is not None:
        inject(model)
        model.deliver()
    model.run_ticks("confirm")
    model.run_ticks("schedule")
    model.settle()
    model.collect()
    return _trade_set(model), model


def _refusals(model: MarketModel) -> str:
    return " ".join(
        [str(r) for a in model.prosumers for r in a.logic.protocol.refused]
        + [e for a in model.prosumers for e in a.logic.errors]
    )


def test_bad_orders_are_refused_without_effect_on_other_trades():
    reference, _ = _midday_trades_with()
    assert reference

    def oversized(model):  # an offer from p01, far beyond its export envelope
        forger = model.prosumers[0]
        env = forger.logic.envelopes[forger.logic.agent_id]
        bad = Offer("p01", model.interval, 10**9, env.export_kw * 10 + 100.0, 0.0)
        forger.endpoint.publish(bad)

    def unknown(model):  # a prosumer the DSO never gave an envelope
        model.bus.endpoint("p99").publish(Bid("p99", model.interval, 0, 5.0, 1.0))

    def late(model):  # an order for the previous interval
        sender = model.prosumers[1]
        sender.endpoint.publish(Bid("p02", model.interval - 1, 10**9, 1.0, 1.0))

    for inject, expected in ((oversized, "envelope"), (unknown, "p99"), (late, "interval")):
        trades, model = _midday_trades_with(inject)
        assert trades == reference, inject.__name__
        assert expected in _refusals(model), inject.__name__
        assert all("p99" not in trade[:2] for trade in trades)


def test_nan_action_abstains_with_reason():
    from abm.envs.pettingzoo_env import MarketParallelEnv

    env = MarketParallelEnv(SimConfig(market="multi"), sample_days=False)
    env.reset(seed=0)
    actions = {pid: np.zeros(4, np.float32) for pid in env.agents}
    actions["p05"] = np.array([0.0, np.nan, 0.0, 0.0], np.float32)
    _, rewards, *_ = env.step(actions)
    row = next(a.logic.last_outcome for a in env.model.prosumers if a.logic.agent_id == "p05")
    assert "not a finite number" in row.action_error
    assert row.order_side == "none" and row.p2p_bought_kwh == 0.0
    assert all(np.isfinite(r) for r in rewards.values())


def test_each_phase_of_an_interval():
    model = MarketModel(SimConfig(market="multi"))
    for _ in range(12):
        model.step()
    t = model.interval
    ids = [a.logic.agent_id for a in model.prosumers]
    model.open()  # 1. public envelopes for everyone, each prosumer its bus's Var price
    for agent in model.prosumers:
        assert sorted(agent.logic.envelopes) == sorted(ids)
        assert agent.logic.interval == t
    assert any(a.logic.var_price_eur_per_kvarh > 0 for a in model.prosumers)
    model.run_ticks("orders")  # 2. a feasible plan and at most one order each
    plans = {a.logic.agent_id: a.logic.plan for a in model.prosumers}
    assert all(plan is not None for plan in plans.values())
    assert {p.order_side for p in plans.values()} >= {SIDE_BUY, SIDE_SELL}
    model.run_ticks("confirm")  # 3. the protocol's clock ticks run
    model.run_ticks("schedule")  # 4. trades final on both sides; one schedule per prosumer
    finals = {a.logic.agent_id: a.logic.protocol.final_trades() for a in model.prosumers}
    assert sorted(model.dso.logic.schedules) == sorted(ids)
    for pid, schedule in model.dso.logic.schedules.items():
        assert schedule.p_kw == pytest.approx(plans[pid].p_kw)
    trades = {tr.trade_id: tr for fin in finals.values() for tr in fin}
    assert trades and all(
        tr in finals[tr.buyer] and tr in finals[tr.seller] for tr in trades.values()
    )
    model.settle()  # 5. power flow and a settlement row for every prosumer
    assert all(a.logic.last_outcome.interval == t for a in model.prosumers)
    assert model.dso.logic.last_outcome.interval == t
    model.collect()  # 6. one row per table
    assert model.datacollector.get_table_dataframe("intervals")["interval"].iloc[-1] == t
