"""The in-process market: phases, modes, invariants, determinism, bad inputs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from abm.model import MarketModel
from abm.sim_config import SimConfig
from abm.simulation import run_simulation
from messaging.messages import Bid, Offer

TOL = 1e-9


@pytest.fixture(scope="module")
def multi_auction():
    return run_simulation(SimConfig(market="multi", protocol="auction"), progress=False)


def _trades_consistent(result) -> None:
    pr, tr = result.tables["prosumers"], result.tables["trades"]
    # Money conservation: P2P payments sum to zero in every interval.
    per_interval = pr.groupby("interval")["p2p_eur"].sum()
    assert np.allclose(per_interval.to_numpy(), 0.0, atol=1e-9)
    # Energy conservation: each trade once for buyer, once for seller, same quantity.
    bought = tr.groupby(["interval", "buyer"])["quantity_kwh"].sum()
    sold = tr.groupby(["interval", "seller"])["quantity_kwh"].sum()
    rows = pr.set_index(["interval", "prosumer"])
    for (t, buyer), kwh in bought.items():
        assert rows.loc[(t, buyer), "p2p_bought_kwh"] == pytest.approx(kwh, abs=1e-9)
    for (t, seller), kwh in sold.items():
        assert rows.loc[(t, seller), "p2p_sold_kwh"] == pytest.approx(kwh, abs=1e-9)
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
    assert set(t["messages"]["kind"]) >= {"Envelope", "VarPrice", "Phase", "Schedule"}
    _trades_consistent(multi_auction)
    pr = t["prosumers"]
    assert np.allclose(pr["bill_eur"], pr["p2p_eur"] + pr["retail_eur"] + pr["var_eur"])
    # Schedules stay inside the export envelope; physical bounds hold.
    assert (pr["p_kw"] <= pr["export_limit_kw"] + 1e-6).all()
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


def _model_at_orders(**kw) -> MarketModel:
    model = MarketModel(SimConfig(market="p2p", **kw))
    for _ in range(12):  # midday: sellers exist
        model.step()
    model.begin_interval()
    return model


def _trade_set(model: MarketModel) -> set[tuple]:
    return {
        (tr["buyer"], tr["seller"], round(tr["quantity_kwh"], 9))
        for agent in model.prosumers
        for tr in agent.logic.last_trades
    }


def test_order_outside_envelope_is_refused_without_effect():
    clean = _model_at_orders()
    clean.finish_interval()
    reference = _trade_set(clean)

    model = _model_at_orders()
    forger = model.prosumers[0]
    env = forger.logic.envelopes[forger.logic.agent_id]
    model.decide()
    # A second, oversized offer from p01 (far beyond its export limit) reaches every peer.
    bad = Offer(forger.logic.agent_id, model.interval, 10**9, env.export_kw * 10 + 100.0, 0.0)
    forger.endpoint.publish(bad)
    model.deliver()
    model.clear()
    model.schedule()
    model.settle()
    model.collect()
    assert _trade_set(model) == reference
    refusals = [e for a in model.prosumers[1:] for e in a.logic.protocol.refused]
    assert refusals and all("p01" in str(r) for r in refusals)


def test_unknown_prosumer_and_late_order_are_refused():
    model = _model_at_orders()
    intruder = model.bus.endpoint("p99")
    model.decide()
    intruder.publish(Bid("p99", model.interval, 0, 5.0, 1.0))
    late = model.prosumers[1]
    late.endpoint.publish(Bid(late.logic.agent_id, model.interval - 1, 10**9, 1.0, 1.0))
    model.deliver()
    reasons = " ".join(str(r) for a in model.prosumers[2:] for r in a.logic.protocol.refused)
    reasons += " ".join(e for a in model.prosumers[2:] for e in a.logic.errors)
    assert "p99" in reasons
    assert "interval" in reasons
    model.clear()
    model.schedule()
    model.settle()
    assert all(tr["buyer"] != "p99" for a in model.prosumers for tr in a.logic.last_trades)


def test_nan_action_abstains_with_reason():
    from abm.env import MarketParallelEnv

    env = MarketParallelEnv(SimConfig(market="multi"), sample_days=False)
    env.reset(seed=0)
    actions = {pid: np.zeros(4, np.float32) for pid in env.agents}
    actions["p05"] = np.array([0.0, np.nan, 0.0, 0.0], np.float32)
    _, rewards, *_ = env.step(actions)
    row = next(a.logic.last_row for a in env.model.prosumers if a.logic.agent_id == "p05")
    assert "not a finite number" in row["action_error"]
    assert row["order_side"] == "none" and row["p2p_bought_kwh"] == 0.0
    assert all(np.isfinite(r) for r in rewards.values())
