"""The forecast MPC: its LP by hand, what it may read, its ToU fallback and its bad inputs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from abm.config import SimConfig
from abm.sim.simulation import run_simulation
from agents import dispatch_lp
from agents.dispatch_lp import (
    Columns,
    DispatchInputError,
    DispatchSolveError,
    ProsumerColumns,
    ProsumerLP,
    Rows,
    WarmLP,
    has_polygon,
    prosumer_bounds,
    prosumer_costs,
    prosumer_rows,
    solve,
)
from agents.errors import AgentError
from agents.forecast import FORECASTERS, seasonal
from agents.mpc import MpcPolicy
from agents.policy import Observation, TouPolicy

RETAIL = np.array([0.1] * 12 + [0.3] * 12)


def _policy(
    load_kw_by_day: np.ndarray | None = None, forecaster=None, pv_kw_by_day=None
) -> MpcPolicy:
    """One prosumer, hourly: 2 kW flat load (or ``load_kw_by_day``), no PV (or ``pv_kw_by_day``),
    a 10 kWh / 5 kW battery; day 10 of the year."""
    load = np.full((365, 24), 2.0) if load_kw_by_day is None else load_kw_by_day
    return MpcPolicy(
        forecaster=forecaster,
        load_kw_by_day=load,
        pv_kw_by_day=np.zeros((365, 24)) if pv_kw_by_day is None else pv_kw_by_day,
        run_days=(10,),
        retail_eur_per_kwh=RETAIL,
        feed_in_eur_per_kwh=np.full(24, 0.05),
        efficiency=1.0,
        storage_price_eur_per_kwh=0.0,
        network_charge_eur_per_kwh=0.03,
        duration_h=1.0,
        fallback=TouPolicy(list(RETAIL)),
    )


def _obs(interval: int = 0, soc_kwh: float = 0.0, load_kw: float = 2.0) -> Observation:
    return Observation(
        hour_of_day=float(interval % 24), load_kw=load_kw, load_q_kvar=0.0, pv_kw=0.0,
        soc_kwh=soc_kwh, battery_kwh=10.0, battery_kw=5.0, inverter_kva=10.0, export_kw=20.0,
        import_kw=20.0, q_min_kvar=0.0, q_max_kvar=0.0, var_price_eur_per_kvarh=0.0,
        retail_eur_per_kwh=float(RETAIL[interval % 24]), feed_in_eur_per_kwh=0.05,
        last_price_eur_per_kwh=0.1, last_vm_pu=1.0, p2p_market=False, var_market=False,
        interval=interval,
    )  # fmt: skip


def test_charges_cheap_for_the_dear_hours_by_hand() -> None:
    # 10 kWh at 0.1 replace 10 kWh at 0.3 (no losses, no storage value): charge at once, at
    # full power (the earliest of the equally cheap hours); at a dear hour with energy: discharge.
    policy = _policy()
    np.testing.assert_allclose(policy.act(_obs(0)), [-1.0, 1.0, -1.0, 0.0])
    np.testing.assert_allclose(policy.act(_obs(12, soc_kwh=10.0)), [0.4, 1.0, -1.0, 0.0])
    assert policy.fallbacks == 0 and policy.fallback_reason == ""


def test_never_reads_the_future() -> None:
    """Other values for today's unseen intervals and later days change no action."""
    rng = np.random.default_rng(0)
    load = rng.uniform(1.0, 3.0, (365, 24))
    other = load.copy()
    other[10, 6:] = 0.0  # no load in today's intervals after the ones seen below
    other[11:] = 0.0  # nor on the days after today
    a, b = _policy(load, seasonal), _policy(other, seasonal)
    for t in range(6):
        obs = _obs(t, load_kw=float(load[10, t]))
        np.testing.assert_array_equal(a.act(obs), b.act(obs))
    # mpc-perfect (forecaster None) reads today's actual profile: it does see the difference
    perfect_a, perfect_b = _policy(load), _policy(other)
    assert any(not np.array_equal(perfect_a.act(_obs(t)), perfect_b.act(_obs(t))) for t in range(6))


@pytest.mark.parametrize("name", sorted(FORECASTERS))
def test_load_and_pv_forecast_together_equal_each_alone(name: str) -> None:
    """One forecaster call for load and PV side by side gives, bit for bit, the forecasts of
    one call per profile."""
    rng = np.random.default_rng(2)
    load, pv = rng.uniform(0.5, 3.0, (365, 24)), rng.uniform(0.0, 6.0, (365, 24))
    forecaster = FORECASTERS[name]
    policy, today = _policy(load, forecaster, pv), np.zeros((2, 24, 1))
    for t in range(24):
        today[:, t, 0] = load[10, t], pv[10, t]
        got = policy.forecasts(dataclasses.replace(_obs(t, load_kw=load[10, t]), pv_kw=pv[10, t]))
        for alone, profile, own in zip(got, (load, pv), today, strict=True):
            expected = forecaster(profile[:10, :, None], own, t + 1)[t:, 0]
            expected[0] = own[t, 0]  # the interval's own value is observed
            np.testing.assert_array_equal(alone, expected)


def test_a_failed_solve_falls_back_to_tou_and_says_why(monkeypatch) -> None:
    def fail(*_args: object) -> None:
        raise DispatchSolveError("the linear program failed: HiGHS says no")

    monkeypatch.setattr(WarmLP, "solve", fail)
    policy = _policy()
    obs = _obs(0)
    np.testing.assert_array_equal(policy.act(obs), TouPolicy(list(RETAIL)).act(obs))
    assert policy.fallbacks == 1 and "HiGHS says no" in policy.fallback_reason


@pytest.mark.parametrize("bindings", [True, False])
def test_warm_started_solves_equal_fresh_ones(monkeypatch, bindings: bool) -> None:
    """One structure (a Var market: the polygon is in) with other loads, PV, envelopes, Var
    prices and states: the kept LP resets its rows' bounds to a fresh build's, and each warm
    solve is feasible and as cheap as the fresh one (without scipy's HiGHS bindings every
    solve is a fresh one)."""
    if not bindings:
        monkeypatch.setattr(dispatch_lp, "_highs_core", lambda: None)
    policy, rng = _policy(), np.random.default_rng(1)
    base = policy.horizon(_obs(3))
    shape = base.load_kw.shape
    kept: ProsumerLP | None = None
    keys = set()
    for _ in range(6):
        day = dataclasses.replace(
            base,
            load_kw=base.load_kw * rng.uniform(0.2, 3.0, shape),
            pv_kw=rng.uniform(0.0, 6.0, shape),
            import_kw=rng.uniform(1.0, 8.0, shape),
            q_max_kvar=rng.uniform(0.5, 4.0, shape),
            var_price_eur_per_kvarh=rng.uniform(0.0, 0.05, shape),
            soc_start_kwh=np.array([rng.uniform(0.0, 10.0)]),
            var_market=True,
        )
        kept = kept or ProsumerLP(day)
        keys.add(ProsumerLP.key(day))
        assert has_polygon(day) and len(keys) == 1
        x = kept.solve(day)
        cols = Columns()
        v = ProsumerColumns.allocate(cols, *day.shape)
        lower, upper, cost = np.zeros(cols.n), np.full(cols.n, np.inf), np.zeros(cols.n)
        prosumer_bounds(v, day, lower, upper)
        prosumer_costs(v, day, cost)
        rows = Rows()
        prosumer_rows(v, day, rows)
        lo, hi = rows.bounds()
        np.testing.assert_array_equal(kept.row_lo, lo)
        np.testing.assert_array_equal(kept.row_hi, hi)
        _, fun_fresh = solve(cost, rows, lower, upper)
        # the same optimum (the plan may be another of equal cost where the LP is degenerate)
        assert cost @ x == pytest.approx(fun_fresh, abs=1e-9)
        assert (x >= lower - 1e-9).all() and (x <= upper + 1e-9).all()
        assert (rows.matrix(cols.n) @ x >= lo - 1e-7).all()
        assert (rows.matrix(cols.n) @ x <= hi + 1e-7).all()


def test_a_warm_solve_that_ends_unknown_is_retried_from_scratch() -> None:
    class Stale:  # a HiGHS instance whose warm solve ends without an optimum
        def __getattr__(self, name: str) -> object:
            return lambda *args: None

        def getModelStatus(self) -> object:
            return None

    rows = Rows()
    rows.add([(np.array([0, 1]), 1.0)], 1.0, np.inf)  # x0 >= 1, x1 >= 1
    lp = WarmLP(rows.matrix(2))
    if lp.core is None:
        pytest.skip("this scipy has no HiGHS bindings: every solve is fresh")
    cost, lower, upper = np.array([1.0, 2.0]), np.zeros(2), np.full(2, 5.0)
    lp.solve(cost, lower, upper, *rows.bounds())
    lp.highs = Stale()
    x, fun = lp.solve(cost, lower, upper, *rows.bounds())
    np.testing.assert_allclose(x, [1.0, 1.0])
    assert fun == pytest.approx(3.0)


def test_an_infeasible_lp_is_a_solve_error() -> None:
    rows = Rows()
    rows.add([(np.array([0]), 1.0)], 1.0, 1.0)  # x = 1 with 0 <= x <= 0.5
    lp = WarmLP(rows.matrix(1))
    with pytest.raises(DispatchSolveError, match="the linear program failed: Infeasible"):
        lp.solve(np.zeros(1), np.zeros(1), np.full(1, 0.5), *rows.bounds())


def test_a_battery_state_outside_its_range_is_one_line() -> None:
    with pytest.raises(DispatchInputError) as info:
        _policy().act(_obs(0, soc_kwh=12.0))
    text = str(info.value)
    assert "soc_start_kwh[0] = 12.0: must be <= battery_kwh" in text and "\n" not in text


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("soc_kwh", 12.0, "soc_start_kwh[0] = 12.0: must be <= battery_kwh"),
        ("import_kw", -1.0, "import_kw[0, 0] = -1.0: must be >= 0"),
        ("var_price_eur_per_kvarh", np.nan, "var_price_eur_per_kvarh holds a value that is not"),
    ],
)
def test_a_bad_observation_after_the_days_first_is_one_line(field, value, message) -> None:
    """The full check runs at the day's first interval; a later bad number still gets it."""
    policy = _policy()
    policy.act(_obs(0))
    with pytest.raises(DispatchInputError) as info:
        policy.act(dataclasses.replace(_obs(5), **{field: value}))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_an_observation_without_its_run_interval_is_one_line() -> None:
    with pytest.raises(AgentError, match=r"interval = -1: must be a run interval in \[0, 24\)"):
        _policy().act(_obs(-1))


@pytest.mark.slow  # one simulated ieee33 day (about 6 s on a quiet machine)
def test_fallbacks_are_counted_in_the_tables(monkeypatch) -> None:
    calls = {"n": 0}
    real = WarmLP.solve

    def every_fifth_fails(self: WarmLP, *args: object) -> tuple[np.ndarray, float]:
        calls["n"] += 1
        if calls["n"] % 5 == 0:
            raise DispatchSolveError("the linear program failed: injected")
        return real(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(WarmLP, "solve", every_fifth_fails)
    config = SimConfig(network="ieee33", market="multi", policy="mpc")
    result = run_simulation(config, progress=False)
    prosumers = result.tables["prosumers"]
    failed = prosumers["policy_fallback"] != ""
    assert failed.sum() == calls["n"] // 5 == result.summary["policy_fallbacks"] > 0
    assert prosumers.loc[failed, "policy_fallback"].str.contains("injected").all()
    assert result.summary["voltage_violations"] == 0
