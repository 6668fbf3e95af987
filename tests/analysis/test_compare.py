"""The comparison of runs: the share of the optimum's savings (``analysis/compare.py``)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from abm.config import SimConfig
from abm.sim.simulation import run_simulation
from analysis.compare import compare_runs, gap_closed, share_of_optimum_savings


def test_share_of_optimum_savings() -> None:
    assert share_of_optimum_savings(100.0, 90.0, 80.0) == pytest.approx(0.5)
    assert share_of_optimum_savings(100.0, 80.0, 80.0) == pytest.approx(1.0)
    assert share_of_optimum_savings(100.0, 100.0, 80.0) == pytest.approx(0.0)
    assert share_of_optimum_savings(100.0, 110.0, 80.0) == pytest.approx(-0.5)
    assert math.isnan(share_of_optimum_savings(100.0, 90.0, 100.0))  # nothing to share
    shares = share_of_optimum_savings(100.0, np.array([90.0, 95.0]), np.array([80.0, 90.0]))
    np.testing.assert_allclose(shares, [0.5, 0.5])


def test_gap_closed_is_the_share_with_tou_as_the_reference() -> None:
    assert gap_closed(76_396.68, 74_783.71, 64_363.91) == pytest.approx(0.134, abs=5e-4)
    assert gap_closed(100.0, 100.0, 80.0) == 0.0 and gap_closed(100.0, 80.0, 80.0) == 1.0
    assert gap_closed(100.0, 104.0, 80.0) == pytest.approx(-0.2)  # worse than ToU


@pytest.mark.slow
def test_compare_runs_reports_the_share_of_the_optimum(tmp_path: Path) -> None:
    runs, optimum_runs = {}, {}
    for market in ("grid-only", "multi"):
        for policy, where in (("rule", runs), ("optimum", optimum_runs)):
            config = SimConfig(network="ieee33", market=market, policy=policy)
            run_simulation(config, tmp_path / f"{policy}-{market}", progress=False)
            where[market] = tmp_path / f"{policy}-{market}"
    frame = compare_runs(runs, baseline="grid-only", optimum_runs=optimum_runs)
    assert (frame["optimum_cost_eur"] <= frame["prosumer_cost_eur"]).all()
    assert frame.loc["grid-only", "share_of_optimum_savings"] == 0.0
    share = frame.loc["multi", "share_of_optimum_savings"]
    expected = (
        frame.loc["grid-only", "prosumer_cost_eur"] - frame.loc["multi", "prosumer_cost_eur"]
    ) / (frame.loc["grid-only", "prosumer_cost_eur"] - frame.loc["multi", "optimum_cost_eur"])
    assert share == pytest.approx(expected) and 0.0 < share < 1.0
