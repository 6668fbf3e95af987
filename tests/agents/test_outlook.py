"""The observation's outlook (format 3): the feature list, the windows and formulas, and
forecasts that never read the future; :class:`agents.forecast.OwnForecast` against the
MPC's own forecasts."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from agents.forecast import SEASONAL_DAYS, ForecastError, OwnForecast, seasonal
from agents.outlook import ProsumerOutlook, outlook
from agents.policy import (
    BASE_FEATURES,
    BASE_OBS_DIM,
    OBS_DIM,
    OBSERVATION_FEATURES,
    OUTLOOK_FEATURES,
    Observation,
    observation_vector,
)

T = 24
RUN_DAYS = (60, 61, 62)  # calendar days of a three-day run


def _profiles(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A year of one prosumer's load and PV, ``(365, T)`` each, every day different."""
    rng = np.random.default_rng(seed)
    hours = np.arange(T)
    sun = np.clip(np.sin((hours - 6) / 12 * np.pi), 0, None)
    load = 1.0 + rng.uniform(0, 2, (365, T))
    pv = 8.0 * sun * rng.uniform(0.2, 1.0, (365, 1))
    return load, pv


def _obs(interval: int, load: np.ndarray, pv: np.ndarray, **change: float) -> Observation:
    """A prosumer's observation at run ``interval``: its own load and PV that interval."""
    day, t = divmod(interval, T)
    fields = dict(
        hour_of_day=float(t), load_kw=float(load[RUN_DAYS[day], t]), load_q_kvar=0.3,
        pv_kw=float(pv[RUN_DAYS[day], t]), soc_kwh=4.0, battery_kwh=10.0, battery_kw=5.0,
        inverter_kva=6.0, export_kw=5.0, import_kw=5.0, q_min_kvar=-1.0, q_max_kvar=1.0,
        var_price_eur_per_kvarh=0.001, retail_eur_per_kwh=0.2, feed_in_eur_per_kwh=0.05,
        last_price_eur_per_kwh=0.12, last_vm_pu=1.01, p2p_market=True, var_market=True,
        interval=interval,
    )  # fmt: skip
    fields.update(change)
    return Observation(**fields)  # type: ignore[arg-type]


def _retail() -> np.ndarray:
    """An hourly tariff over the run: 0.12 at night, 0.32 at the evening peak, else 0.22."""
    day = np.full(T, 0.22)
    day[:6], day[17:21] = 0.12, 0.32
    return np.tile(day, len(RUN_DAYS))


def _outlook(load: np.ndarray, pv: np.ndarray) -> ProsumerOutlook:
    forecast = OwnForecast(
        forecaster=seasonal, load_kw_by_day=load, pv_kw_by_day=pv, run_days=RUN_DAYS
    )
    return ProsumerOutlook(forecast, _retail(), pv_kwp=9.0, duration_h=1.0)


def test_one_feature_list_the_record_s_first() -> None:
    assert OBSERVATION_FEATURES[:BASE_OBS_DIM] == BASE_FEATURES and BASE_OBS_DIM == 17
    assert len(set(OBSERVATION_FEATURES)) == OBS_DIM == 36
    assert OUTLOOK_FEATURES == (
        "pv_kwp_abs", "battery_kwh_abs", "battery_kw_abs", "inverter_kva_abs", "load_abs",
        "pv_abs", "pv_next_1h", "pv_next_3h", "pv_next_4_9h", "load_next_1h", "load_next_3h",
        "load_next_4_9h", "net_rest_of_day", "pv_rest_of_day", "load_rest_of_day",
        "retail_next", "retail_max_ahead", "retail_min_ahead", "hours_left",
    )  # fmt: skip


@pytest.mark.parametrize("duration_h", [1.0, 0.5, 0.25])
def test_windows_are_hours_after_the_interval(duration_h: float) -> None:
    steps = round(24 / duration_h)
    per_hour = round(1 / duration_h)
    t = 2 * per_hour  # 02:00
    ahead = np.arange(1.0, steps - t)  # the intervals after t: 1, 2, 3, ...
    retail = np.linspace(0.1, 0.3, steps - t)
    got = outlook(
        load_ahead_kw=2 * ahead, pv_ahead_kw=ahead, retail_ahead_eur_per_kwh=retail, pv_kwp=5.0,
        duration_h=duration_h, interval_of_day=t, intervals_per_day=steps,
    )  # fmt: skip
    assert got.pv_next_1h_kw == pytest.approx(ahead[:per_hour].mean())
    assert got.pv_next_3h_kw == pytest.approx(ahead[: 3 * per_hour].mean())
    # hours 4..9 ahead: intervals t + 1 + 3h .. t + 9h
    assert got.pv_next_4_9h_kw == pytest.approx(ahead[3 * per_hour : 9 * per_hour].mean())
    assert got.load_next_4_9h_kw == pytest.approx(2 * got.pv_next_4_9h_kw)
    assert got.pv_rest_kwh == pytest.approx(ahead.sum() * duration_h)
    assert got.load_rest_kwh == pytest.approx(2 * ahead.sum() * duration_h)
    assert got.retail_next_eur_per_kwh == retail[1]
    assert (got.retail_max_ahead_eur_per_kwh, got.retail_min_ahead_eur_per_kwh) == (0.3, 0.1)


def test_the_day_s_end_gives_empty_windows() -> None:
    last = outlook(
        load_ahead_kw=np.zeros(0), pv_ahead_kw=np.zeros(0),
        retail_ahead_eur_per_kwh=np.array([0.12]), pv_kwp=5.0, duration_h=1.0,
        interval_of_day=T - 1, intervals_per_day=T,
    )  # fmt: skip
    assert last.pv_next_1h_kw == last.load_next_4_9h_kw == last.pv_rest_kwh == 0.0
    assert last.retail_next_eur_per_kwh == 0.12  # the last interval's own
    near = outlook(
        load_ahead_kw=np.ones(2), pv_ahead_kw=np.ones(2),
        retail_ahead_eur_per_kwh=np.ones(3), pv_kwp=5.0, duration_h=1.0,
        interval_of_day=T - 3, intervals_per_day=T,
    )  # fmt: skip
    assert near.pv_next_3h_kw == 1.0 and near.pv_next_4_9h_kw == 0.0  # cut at the day's end


def test_outlook_features_formulas() -> None:
    load, pv = _profiles()
    own = _outlook(load, pv)
    obs = _obs(T + 9, load, pv, inverter_kva=6.0, battery_kw=5.0, battery_kwh=0.5)
    ahead = own.at(obs)
    named = dict(zip(OBSERVATION_FEATURES, observation_vector(obs, ahead), strict=True))
    s = 6.0  # max(inverter_kva, battery_kw, 1e-3)
    expected = {
        "pv_kwp_abs": 0.09, "battery_kwh_abs": 0.005, "battery_kw_abs": 0.05,
        "inverter_kva_abs": 0.06, "load_abs": obs.load_kw / 100, "pv_abs": obs.pv_kw / 100,
        "pv_next_1h": ahead.pv_next_1h_kw / s, "load_next_3h": ahead.load_next_3h_kw / s,
        "pv_next_4_9h": ahead.pv_next_4_9h_kw / s,
        # max(battery_kwh, 1)
        "net_rest_of_day": ahead.pv_rest_kwh - ahead.load_rest_kwh,
        "pv_rest_of_day": ahead.pv_rest_kwh / (24 * s),
        "load_rest_of_day": ahead.load_rest_kwh / (24 * s),
        "retail_next": 3 * 0.22, "retail_max_ahead": 3 * 0.32, "retail_min_ahead": 3 * 0.22,
        "hours_left": (T - 1 - 9) / T,
    }  # fmt: skip
    for name, value in expected.items():
        assert named[name] == pytest.approx(value, rel=1e-6), name
    # the windows: the forecast made at 09:00 (seasonal), after the interval
    load_f, pv_f = own.forecast.at(obs)
    assert ahead.pv_next_1h_kw == pytest.approx(pv_f[1])
    assert ahead.load_next_3h_kw == pytest.approx(load_f[1:4].mean())
    assert ahead.pv_rest_kwh == pytest.approx(pv_f[1:].sum())
    assert observation_vector(obs).shape == (BASE_OBS_DIM,)  # the record alone


def test_forecast_features_never_read_the_future() -> None:
    """Today's later intervals and every later day changed: the outlook at ``t`` is the
    same; today's seen intervals or the past changed: it is not (the test can fail)."""
    load, pv = _profiles()
    t, day = 10, 1
    calendar = RUN_DAYS[day]
    obs = _obs(day * T + t, load, pv)
    before = dataclasses.astuple(_outlook(load, pv).at(obs))
    day_before = np.stack(
        OwnForecast(forecaster=seasonal, load_kw_by_day=load, pv_kw_by_day=pv).day(calendar)
    )[:, t]
    future_load, future_pv = load.copy(), pv.copy()
    for profile in (future_load, future_pv):
        profile[calendar, t + 1 :] *= 3.0
        profile[calendar + 1 :] *= 5.0
    assert dataclasses.astuple(_outlook(future_load, future_pv).at(obs)) == before
    day_after = np.stack(
        OwnForecast(forecaster=seasonal, load_kw_by_day=future_load, pv_kw_by_day=future_pv).day(
            calendar
        )
    )[:, t]
    np.testing.assert_array_equal(day_after[:, : t + 1], day_before[:, : t + 1])
    np.testing.assert_array_equal(day_after[:, t + 1 :], day_before[:, t + 1 :])
    for changed in ((calendar, slice(0, t)), (calendar - SEASONAL_DAYS, slice(None))):
        seen_load = load.copy()
        seen_load[changed] *= 3.0
        assert dataclasses.astuple(_outlook(seen_load, pv).at(obs)) != before, changed


def test_at_is_the_day_s_forecast_made_at_the_interval() -> None:
    """One prosumer's forecast at an observation (a policy's) is the day's forecast made at
    that interval (the vectorised environment's), at every interval."""
    load, pv = _profiles(1)
    own = _outlook(load, pv).forecast
    load_day, pv_day = own.day(RUN_DAYS[2])  # (T, T, 1) each
    for t in range(T):
        load_f, pv_f = own.at(_obs(2 * T + t, load, pv))
        np.testing.assert_array_equal(load_f, load_day[t, t:, 0])
        np.testing.assert_array_equal(pv_f, pv_day[t, t:, 0])


@pytest.mark.parametrize("forecaster", [seasonal, None])
def test_own_forecast_is_the_mpc_s(forecaster: object) -> None:
    """:meth:`OwnForecast.at` gives the MPC's forecasts (``MpcPolicy.forecasts``) over a run,
    so the MPC can read them from it."""
    from agents.mpc import MpcPolicy
    from agents.policy import RulePolicy

    load, pv = _profiles(2)
    own = OwnForecast(
        forecaster=forecaster,  # type: ignore[arg-type]
        load_kw_by_day=load,
        pv_kw_by_day=pv,
        run_days=RUN_DAYS,
    )
    mpc = MpcPolicy(
        forecaster=forecaster, load_kw_by_day=load, pv_kw_by_day=pv, run_days=RUN_DAYS,  # type: ignore[arg-type]
        retail_eur_per_kwh=_retail(), feed_in_eur_per_kwh=np.full(len(_retail()), 0.05),
        efficiency=0.95, storage_price_eur_per_kwh=0.1, network_charge_eur_per_kwh=0.03,
        duration_h=1.0, fallback=RulePolicy(),
    )  # fmt: skip
    for interval in range(len(RUN_DAYS) * T):
        obs = _obs(interval, load, pv)
        for ours, theirs in zip(own.at(obs), mpc.forecasts(obs), strict=True):
            np.testing.assert_array_equal(ours, theirs)


def test_an_interval_outside_the_run_is_refused() -> None:
    load, pv = _profiles()
    with pytest.raises(ForecastError, match=r"observation interval = 72: must be .*\[0, 72\)"):
        _outlook(load, pv).at(dataclasses.replace(_obs(0, load, pv), interval=72))
