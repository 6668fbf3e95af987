"""The prosumer's own forecasters: only the past and the seen intervals, batched, typed errors."""

from __future__ import annotations

import numpy as np
import pytest

import abm.config  # noqa: F401 - registers the MPC policies
from abm.config import ConfigError, SimConfig
from agents.forecast import (
    FORECASTERS,
    SCALE_RANGE,
    ForecastError,
    forecast_day,
    make_forecaster,
    persistence,
    regression,
    seasonal,
)
from agents.policy_registry import parse_policy

T, N = 24, 3


def _days(n_days: int, seed: int = 0) -> np.ndarray:
    """``(n_days, T, N)`` positive daily shapes with noise."""
    rng = np.random.default_rng(seed)
    shape = 1.0 + np.sin(np.linspace(0, 2 * np.pi, T))[:, None] * np.array([0.5, 0.8, 0.2])
    return shape * rng.uniform(0.7, 1.3, (n_days, 1, N))


@pytest.mark.parametrize("name", list(FORECASTERS))
@pytest.mark.parametrize("seen", [0, 1, 13, T])
def test_reads_only_the_past_and_the_seen_intervals(name: str, seen: int) -> None:
    past, today = _days(30), _days(1, seed=1)[0]
    forecaster = make_forecaster(name)
    first = forecaster(past, today, seen)
    other = today.copy()
    other[seen:] = 1e3  # a different future
    second = forecaster(past, other, seen)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first[:seen], today[:seen])
    assert first.shape == (T, N) and (first >= 0).all()
    np.testing.assert_array_equal(first, forecaster(past, today, seen))  # deterministic


def test_persistence_is_yesterday() -> None:
    past, today = _days(5), _days(1, seed=2)[0]
    np.testing.assert_array_equal(persistence(past, today, 10)[10:], past[-1][10:])
    # no past day: the last seen value held
    np.testing.assert_array_equal(persistence(past[:0], today, 10)[10:], np.tile(today[9], (14, 1)))


def test_seasonal_scales_the_mean_profile_by_today_so_far() -> None:
    profile = _days(1)[0]
    past = np.stack([profile] * 20)
    np.testing.assert_allclose(seasonal(past, 2.0 * profile, 8)[8:], 2.0 * profile[8:])
    # a scale beyond the range is clipped
    high = SCALE_RANGE[1]
    np.testing.assert_allclose(seasonal(past, 100.0 * profile, 8)[8:], high * profile[8:])
    # nothing seen: the mean profile itself
    np.testing.assert_allclose(seasonal(past, profile, 0), profile)


def test_regression_recovers_a_repeated_day_and_beats_persistence_on_noise() -> None:
    profile = _days(1)[0]
    past = np.stack([profile] * 40)
    np.testing.assert_allclose(regression(past, profile, 0), profile, atol=1e-6)
    noisy = _days(80, seed=3)  # i.i.d. day levels: yesterday is a poor guess, the mean a good one
    err = {
        name: np.mean([np.abs(f(noisy[:d], noisy[d], 0) - noisy[d]).mean() for d in range(40, 80)])
        for name, f in FORECASTERS.items()
    }
    assert err["regression"] < err["persistence"] and err["seasonal"] < err["persistence"]


def test_forecast_day_stacks_the_forecast_made_at_each_interval() -> None:
    past, today = _days(20), _days(1, seed=4)[0]
    day = forecast_day(seasonal, past, today)
    assert day.shape == (T, T, N)
    np.testing.assert_array_equal(day[5], seasonal(past, today, 6))


def test_unknown_forecaster_is_one_line() -> None:
    with pytest.raises(ForecastError) as info:
        make_forecaster("crystal-ball")
    text = str(info.value)
    assert "'crystal-ball'" in text and "persistence" in text and "\n" not in text
    with pytest.raises(ConfigError, match=r"policy='mpc:crystal-ball'.*unknown"):
        SimConfig(policy="mpc:crystal-ball")
    assert parse_policy("mpc").arg == "seasonal" and parse_policy("mpc:regression").arg == (
        "regression"
    )
    assert parse_policy("mpc-perfect").arg is None


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ForecastError, match="seen = 25"):
        seasonal(_days(3), _days(1)[0], 25)
    with pytest.raises(ForecastError, match="expected"):
        seasonal(_days(3), np.zeros(T), 1)
