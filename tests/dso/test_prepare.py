"""``DSOAgent.prepare``: a publication computed ahead equals the one computed at ``open``."""

from __future__ import annotations

import pytest

from abm.config import Market, SimConfig
from abm.inputs.run_inputs import build_run_inputs, make_dso
from messaging.messages import Envelopes, VarPrices


@pytest.mark.parametrize("network", ["ieee33", "swiss161"])
def test_a_prepared_open_publishes_exactly_what_an_unprepared_one_does(network: str) -> None:
    world = build_run_inputs(SimConfig(network=network, market=Market.MULTI, days=1))
    ahead, at_open = make_dso(world), make_dso(world)
    for t in (0, 7, 13):  # midnight, morning, midday (PV: envelopes bind)
        ahead.prepare(t)
        published = [ahead.open_interval(t), at_open.open_interval(t)]
        tables = [[m for _, m in out if isinstance(m, Envelopes | VarPrices)] for out in published]
        assert len(tables[0]) == 2 and tables[0] == tables[1]  # value for value
        assert (ahead.envelopes.export_kw == at_open.envelopes.export_kw).all()
        assert (ahead.var_price == at_open.var_price).all()


def test_a_preparation_for_another_interval_is_not_used() -> None:
    world = build_run_inputs(SimConfig(network="ieee33", market=Market.MULTI, days=1))
    stale, fresh, night = make_dso(world), make_dso(world), make_dso(world)
    stale.prepare(3)
    assert stale.open_interval(12) == fresh.open_interval(12)
    assert (stale.envelopes.export_kw == fresh.envelopes.export_kw).all()
    night.open_interval(3)
    assert (night.var_price != fresh.var_price).any()  # what was prepared would differ
