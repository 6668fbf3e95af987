"""In-process market with a prosumer that dies before its schedule: the DSO's ``Absent``.

The dying prosumer has committed its trades (auction: confirms sent; bilateral: request
accepted) when it stops handling messages at ``Phase(schedule)``. The DSO settles the
interval without it and broadcasts ``Absent`` before the settlements, so its counterparties
void their trades with it: no trade is half-settled and P2P money sums to zero.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from abm.config import SimConfig
from abm.sim.model import MarketModel
from agents.prosumer import ProsumerAgent
from agents.settlement import BILL_PARTS
from messaging.messages import Absent, Message, Phase, Schedule, Settlement
from tests.helpers import TOL, assert_conserved

N_INTERVALS = 14


class DiesAtSchedule:
    """A prosumer's logic that stops handling messages at ``Phase(schedule)`` of ``interval``."""

    def __init__(self, logic: ProsumerAgent, interval: int) -> None:
        self.logic = logic
        self.interval = interval
        self.dead = False

    def handle(self, msg: Message) -> list:
        """Handle ``msg`` unless dead (from the schedule phase of the fatal interval on)."""
        if isinstance(msg, Phase) and (msg.interval, msg.phase) == (self.interval, "schedule"):
            self.dead = True
        return [] if self.dead else self.logic.handle(msg)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.logic, name)


def _run(config: SimConfig, dying: str | None = None, at: int = -1) -> MarketModel:
    model = MarketModel(config)
    for agent in model.prosumers:
        if agent.logic.agent_id == dying:
            agent.logic = DiesAtSchedule(agent.logic, at)
    settle = model.dso.logic.settle
    model.settlements = []

    def recording_settle() -> list:
        out = settle()
        model.settlements += [msg for _, msg in out if isinstance(msg, Absent | Settlement)]
        return out

    model.dso.logic.settle = recording_settle
    for _ in range(N_INTERVALS):
        model.step()
    return model


def _tables(model: MarketModel) -> dict[str, pd.DataFrame]:
    return {
        name: model.datacollector.get_table_dataframe(name)
        for name in ("prosumers", "trades", "intervals")
    }


@pytest.fixture(scope="module", params=["auction", "bilateral"])
def runs(request):
    """The reference run, and one where the first trade's buyer dies before its schedule."""
    config = SimConfig(protocol=request.param)
    reference = _run(config)
    trades = _tables(reference)["trades"]
    first = trades.iloc[0]
    t, buyer = int(first["interval"]), str(first["buyer"])
    assert t < N_INTERVALS - 1
    return reference, _run(config, buyer, t), t, buyer


def test_nobody_absent_prosumer_var_equals_the_dso_settlement(runs) -> None:
    reference, *_ = runs
    rows = _tables(reference)["prosumers"].set_index(["interval", "prosumer"])["var_eur"]
    sent = {(m.interval, m.prosumer): m.var_eur for m in reference.settlements}
    assert not any(isinstance(m, Absent) for m in reference.settlements)
    assert rows.to_dict() == sent


def test_counterparties_void_their_trades_with_the_dead_buyer(runs) -> None:
    reference, faulty, t, buyer = runs
    absent = [m for m in faulty.settlements if isinstance(m, Absent)]
    assert {(m.interval, m.prosumer) for m in absent} == {(k, buyer) for k in range(t, N_INTERVALS)}
    got, want = _tables(faulty), _tables(reference)
    pr, tr = got["prosumers"], got["trades"]
    assert set(pr.loc[pr["prosumer"] == buyer, "interval"]) == set(range(t))
    now = pr[pr["interval"] == t].set_index("prosumer")
    before = want["prosumers"][want["prosumers"]["interval"] == t].set_index("prosumer")
    lost = want["trades"][(want["trades"]["interval"] == t) & (want["trades"]["buyer"] == buyer)]
    assert len(lost) > 0
    for seller, kwh in lost.groupby("seller")["quantity_kwh"].sum().items():
        # The seller's sale to the dead buyer is gone from its row and billed at retail.
        assert now.loc[seller, "p2p_sold_kwh"] == pytest.approx(
            before.loc[seller, "p2p_sold_kwh"] - kwh, abs=TOL
        )
        assert now.loc[seller, "p_kw"] == before.loc[seller, "p_kw"]
        assert now.loc[seller, "retail_eur"] != before.loc[seller, "retail_eur"]
    # No trade involves the dead buyer; every trade is settled on both sides.
    assert not ((tr["buyer"] == buyer) | (tr["seller"] == buyer)).any()
    assert_conserved(got)
    assert np.allclose(pr["bill_eur"], pr[list(BILL_PARTS)].sum(axis=1))
    # Before the death the run is the reference run.
    for name in ("prosumers", "trades"):
        pd.testing.assert_frame_equal(
            got[name][got[name]["interval"] < t], want[name][want[name]["interval"] < t]
        )


def test_dso_marks_absent_once_drops_and_refuses_its_schedule() -> None:
    model = MarketModel(SimConfig())
    model.begin_interval()
    dso = model.dso.logic
    first, second = model.world.prosumer_ids[:2]
    assert dso.handle(Schedule(first, 0, 0, 0.0, 0.0, 0.0)) == []
    [(to, absent)] = dso.mark_absent(first)
    assert to is None and (absent.interval, absent.prosumer) == (0, first)
    assert dso.mark_absent(first) == [] and first not in dso.schedules
    [(to, error)] = dso.handle(Schedule(first, 0, 1, 0.0, 0.0, 0.0))
    assert to == first and "absent" in error.reason
    assert dso.handle(Schedule(second, 0, 0, 0.0, 0.0, 0.0)) == []
    out = dso.settle()
    absent_now = {msg.prosumer for _, msg in out if isinstance(msg, Absent)}
    assert absent_now == set(model.world.prosumer_ids) - {first, second}
    assert dso.last_outcome.absent_prosumers == len(model.world.prosumer_ids) - 1
