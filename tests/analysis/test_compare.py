"""The comparison of runs: the share of the optimum's savings, the gap closed and the paired
per-day test (``analysis/compare.py``)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from abm.config import SimConfig
from abm.sim.simulation import run_simulation
from analysis.compare import compare_runs, gap_closed, paired_days, share_of_optimum_savings


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
def test_paired_days_by_hand() -> None:
    # 5 days, every one cheaper: W+ = 0 of the 2^5 = 32 equally likely sign patterns, so the
    # exact two-sided p is 2 * 1/32
    test = paired_days([9.0, 8.0, 7.0, 6.0, 5.0], [10.0] * 5)
    assert test == {"diff_eur_per_day": pytest.approx(-3.0), "p_wilcoxon": pytest.approx(0.0625)}
    # differences 1, -2, 3, 4, 5: W- = 2 (the rank of |-2|); the sign patterns with a rank
    # sum <= 2 are {}, {1}, {2}: p = 2 * 3/32; a zero difference is dropped from the ranks
    # but counts in the mean
    reference = np.array([50.0, 60.0, 70.0, 80.0, 90.0, 100.0])
    test = paired_days(reference + np.array([1.0, -2.0, 3.0, 4.0, 5.0, 0.0]), reference)
    assert test["p_wilcoxon"] == pytest.approx(0.1875)
    assert test["diff_eur_per_day"] == pytest.approx(11.0 / 6.0)
    # the same policy: nothing to rank
    same = paired_days([3.0, 4.0], [3.0, 4.0])
    assert same["diff_eur_per_day"] == 0.0 and math.isnan(same["p_wilcoxon"])
    with pytest.raises(ValueError, match=r"must be the same days"):
        paired_days([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match=r"at least one"):
        paired_days([], [])


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
