"""The study figures: hosting capacity of a sweep, log-log growth fits, sweep slopes."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analysis.studies import growth_exponents, hosting_capacity, loglog_fit, sweep_slopes


def _sweep(rule: str, violations: list[int], curtailed: list[float]) -> pd.DataFrame:
    n = len(violations)
    return pd.DataFrame(
        {
            "rule": [rule] * n,
            "pv_penetration": [0.5 * (k + 1) for k in range(n)],
            "voltage_violations": violations,
            "pv_curtailed_kwh": curtailed,
            "pv_available_kwh": [100.0 * (k + 1) for k in range(n)],
        }
    )


def test_hosting_capacity_is_the_last_point_before_the_first_limit() -> None:
    sweep = pd.concat(
        [
            _sweep("volt", [0, 0, 3, 0], [0, 0, 0, 0]),  # a later clean point does not count
            _sweep("curt", [0, 0, 0, 0], [0, 4.0, 30.0, 90.0]),  # 2 %, 10 %, 22.5 %
            _sweep("clean", [0, 0, 0, 0], [0, 0, 0, 0]),
            _sweep("first", [1, 0, 0, 0], [0, 0, 0, 0]),
        ]
    ).sample(frac=1.0, random_state=1)  # order of rows must not matter
    strict = hosting_capacity(sweep, by="rule")
    assert strict.loc["volt"].tolist() == [1.0, 1.5, "voltage", True]
    assert strict.loc["curt"].tolist() == [0.5, 1.0, "curtailment", True]
    assert strict.loc["clean", "hosting_capacity_pv_penetration"] == 2.0
    assert not strict.loc["clean", "reached"] and math.isnan(
        strict.loc["clean", "first_limit_pv_penetration"]
    )
    assert strict.loc["first", "hosting_capacity_pv_penetration"] == 0.0
    tolerant = hosting_capacity(sweep, by="rule", curtailment_tolerance_pct=5.0)
    assert tolerant.loc["curt"].tolist() == [1.0, 1.5, "curtailment", True]
    with pytest.raises(ValueError, match="curtailment_tolerance_pct"):
        hosting_capacity(sweep, by="rule", curtailment_tolerance_pct=-1.0)


def test_loglog_fit_recovers_a_power_law() -> None:
    x = np.array([4.0, 8.0, 16.0, 32.0])
    b, a, r2 = loglog_fit(x, 3.0 * x**2)
    assert b == pytest.approx(2.0) and a == pytest.approx(3.0) and r2 == pytest.approx(1.0)
    assert all(math.isnan(v) for v in loglog_fit([4.0], [1.0]))
    assert all(math.isnan(v) for v in loglog_fit([4.0, 8.0], [1.0, 0.0]))  # log of zero


def test_growth_exponents_and_slopes_per_group() -> None:
    n = np.array([2.0, 4.0, 8.0])
    frame = pd.DataFrame({"p": ["a"] * 3 + ["b"] * 3, "n": [*n, *n], "m": [*(n**2), *(5 * n)]})
    growth = growth_exponents(frame, size="n", metrics=["m"], by=["p"]).set_index("p")
    assert growth.loc["a", "exponent"] == pytest.approx(2.0)
    assert growth.loc["b", "exponent"] == pytest.approx(1.0)
    assert growth.loc["a", "exponent_last"] == pytest.approx(2.0)
    slopes = sweep_slopes(frame, x="n", metrics=["m"], by=["p"]).set_index("p")
    assert slopes.loc["b", "slope"] == pytest.approx(5.0)
    assert slopes.loc["b", "range_pct"] == pytest.approx(100.0 * 30.0 / (70.0 / 3.0))
