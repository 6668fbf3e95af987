"""The perfect-foresight optimum (``abm/optimum/lp.py``): hand-checked LPs, the limits its
dispatch keeps on a real day, and its settlement by the real market against the baselines."""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from abm.cli.main import main
from abm.config import SimConfig
from abm.inputs.run_inputs import RunInputs, build_run_inputs
from abm.optimum.lp import DayInputs, day_inputs, optimise_run, solve_day
from abm.sim.simulation import run_simulation
from agents.dispatch_lp import DispatchInputError
from agents.policy import InvalidAction, Observation
from agents.replay import ReplayPolicy
from dso.powerflow import RadialPowerFlow

#: Winter and summer test days (index in the test-day set: calendar days 4 and 184).
WINTER, SUMMER = 0, 36
TOL = 1e-6


def _day(**changes: object) -> DayInputs:
    """One prosumer, two hours: cheap then dear retail, a 10 kWh / 10 kW battery, no PV."""
    base = DayInputs(
        duration_h=1.0,
        load_kw=np.array([[0.0], [10.0]]),
        pv_kw=np.zeros((2, 1)),
        export_kw=np.full((2, 1), 100.0),
        import_kw=np.full((2, 1), 100.0),
        q_min_kvar=np.zeros((2, 1)),
        q_max_kvar=np.zeros((2, 1)),
        var_price_eur_per_kvarh=np.zeros((2, 1)),
        retail_eur_per_kwh=np.array([0.1, 0.3]),
        feed_in_eur_per_kwh=np.array([0.05, 0.05]),
        inverter_kva=np.array([20.0]),
        battery_kwh=np.array([10.0]),
        battery_kw=np.array([10.0]),
        efficiency=np.array([0.9]),
        soc_start_kwh=np.array([0.0]),
        storage_price_eur_per_kwh=np.array([0.0]),
        network_charge_eur_per_kwh=0.03,
        p2p_market=False,
        var_market=False,
    )
    return dataclasses.replace(base, **changes)


def test_battery_arbitrage_by_hand() -> None:
    # Charging 10 kW at 0.1 stores 9 kWh, which delivers 8.1 kWh at 0.3: a gain of
    # 0.3 * 0.81 - 0.1 > 0 per kWh charged, so charge fully, then discharge everything.
    d = solve_day(_day())
    np.testing.assert_allclose(d.battery_p_kw[:, 0], [-10.0, 8.1], atol=TOL)
    np.testing.assert_allclose(d.soc_kwh[:, 0], [9.0, 0.0], atol=TOL)
    assert d.cost_eur == pytest.approx(10 * 0.1 + (10 - 8.1) * 0.3, abs=TOL)


def test_storage_value_keeps_energy_by_hand() -> None:
    # A kWh left in store is worth 0.32 at the end, more than the 0.9 * 0.3 it saves when
    # discharged now, less than the 0.3 / 0.9 it costs to store at the dear hour: charge
    # fully at the cheap hour and keep it (9 kWh in store, credited 9 * 0.32).
    d = solve_day(_day(storage_price_eur_per_kwh=np.array([0.32])))
    np.testing.assert_allclose(d.battery_p_kw[:, 0], [-10.0, 0.0], atol=TOL)
    assert d.cost_eur == pytest.approx(10 * 0.1 + 10 * 0.3 - 9 * 0.32, abs=TOL)


def test_p2p_trade_by_hand() -> None:
    # A exports 10 kW of PV, B imports 10 kW: every kWh traded saves retail - feed-in - charge.
    two = {
        "load_kw": np.array([[0.0, 10.0]]),
        "pv_kw": np.array([[10.0, 0.0]]),
        "export_kw": np.full((1, 2), 100.0),
        "import_kw": np.full((1, 2), 100.0),
        "q_min_kvar": np.zeros((1, 2)),
        "q_max_kvar": np.zeros((1, 2)),
        "var_price_eur_per_kvarh": np.zeros((1, 2)),
        "retail_eur_per_kwh": np.array([0.3]),
        "feed_in_eur_per_kwh": np.array([0.05]),
        "inverter_kva": np.array([20.0, 20.0]),
        "battery_kwh": np.zeros(2),
        "battery_kw": np.zeros(2),
        "efficiency": np.ones(2),
        "soc_start_kwh": np.zeros(2),
        "storage_price_eur_per_kwh": np.zeros(2),
    }
    grid = solve_day(_day(**two))
    assert grid.cost_eur == pytest.approx(10 * 0.3 - 10 * 0.05, abs=TOL)
    p2p = solve_day(_day(**two, p2p_market=True))
    assert p2p.p2p_kwh[0] == pytest.approx(10.0, abs=TOL)
    assert p2p.cost_eur == pytest.approx(grid.cost_eur - 10 * (0.3 - 0.05 - 0.03), abs=TOL)
    # a charge above the tariff spread: no trade pays
    dear = solve_day(_day(**two, p2p_market=True, network_charge_eur_per_kwh=0.3))
    assert dear.p2p_kwh[0] == pytest.approx(0.0, abs=TOL)
    assert dear.cost_eur == pytest.approx(grid.cost_eur, abs=TOL)


def test_ex_ante_var_and_the_inverter_circle_by_hand() -> None:
    # 8 kW of PV through a 10 kVA inverter, a Var price of 0.01 EUR/kvarh: inject as much q
    # as the envelope (5 kvar) allows; with a wider envelope, as much as the circle leaves
    # (6 kvar exactly, at least the inscribed polygon's share of it).
    one = {
        "load_kw": np.array([[8.0]]),
        "pv_kw": np.array([[8.0]]),
        "export_kw": np.array([[100.0]]),
        "import_kw": np.array([[100.0]]),
        "q_min_kvar": np.array([[-5.0]]),
        "q_max_kvar": np.array([[5.0]]),
        "var_price_eur_per_kvarh": np.array([[0.01]]),
        "retail_eur_per_kwh": np.array([0.3]),
        "feed_in_eur_per_kwh": np.array([0.05]),
        "inverter_kva": np.array([10.0]),
        "battery_kwh": np.zeros(1),
        "battery_kw": np.zeros(1),
        "soc_start_kwh": np.zeros(1),
        "var_market": True,
    }
    d = solve_day(_day(**one))
    assert d.q_inverter_kvar[0, 0] == pytest.approx(5.0, abs=TOL)
    assert d.pv_used_kw[0, 0] == pytest.approx(8.0, abs=TOL)
    assert d.cost_eur == pytest.approx(-0.05, abs=TOL)
    wide = solve_day(_day(**{**one, "q_min_kvar": np.array([[-10.0]]),
                             "q_max_kvar": np.array([[10.0]])}))  # fmt: skip
    q = wide.q_inverter_kvar[0, 0]
    p_inv = wide.pv_used_kw[0, 0]
    assert p_inv**2 + q**2 <= 100.0 + TOL
    assert q >= 0.9 * math.sqrt(100.0 - p_inv**2)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pv_kw": np.zeros((3, 1))}, "pv_kw has shape (3, 1), expected (2, 1)"),
        ({"pv_kw": np.array([[np.nan], [0.0]])}, "pv_kw holds a value that is not finite"),
        ({"efficiency": np.array([1.5])}, "efficiency[0] = 1.5: must be in (0, 1]"),
        ({"soc_start_kwh": np.array([11.0])}, "soc_start_kwh[0] = 11.0: must be <= battery_kwh"),
        ({"q_min_kvar": np.ones((2, 1))}, "q_min_kvar[0, 0] = 1.0: must be <= 0"),
        ({"network_charge_eur_per_kwh": -1.0}, "network_charge_eur_per_kwh = -1.0"),
    ],
)
def test_bad_inputs_one_line(change: dict, message: str) -> None:
    with pytest.raises(DispatchInputError) as info:
        _day(**change)
    text = str(info.value)
    assert message in text and "\n" not in text


def test_replay_policy_plays_the_plan_in_order() -> None:
    policy = ReplayPolicy(np.array([-5.0, 2.5]), np.array([1.0, -2.0]), battery_kw=5.0,
                          inverter_kva=4.0)  # fmt: skip
    obs = Observation(*([0.0] * 17), p2p_market=True, var_market=True)
    np.testing.assert_allclose(policy.act(obs), [-1.0, 1.0, -1.0, 0.25])
    np.testing.assert_allclose(policy.act(obs), [0.5, 1.0, -1.0, -0.5])
    with pytest.raises(InvalidAction, match="has 2 intervals"):
        policy.act(obs)
    none = ReplayPolicy(np.zeros(1), np.ones(1), battery_kw=0.0, inverter_kva=0.0)
    np.testing.assert_allclose(none.act(obs), [0.0, 1.0, -1.0, 0.0])


@functools.cache
def _world(first_day: int, market: str = "multi") -> RunInputs:
    return build_run_inputs(SimConfig(network="ieee33", market=market, first_day=first_day))


@pytest.mark.slow
@pytest.mark.parametrize("first_day", [WINTER, SUMMER])
def test_dispatch_keeps_envelopes_inverter_and_battery(first_day: int) -> None:
    world = _world(first_day)
    pros = world.scenario.prosumers
    soc0 = np.array([p.initial_soc_fraction * p.battery_kwh for p in pros])
    day = day_inputs(world, RadialPowerFlow(world.feeder), 0, soc0)
    d = optimise_run(world).day_dispatch[0]
    p_inv = d.pv_used_kw + d.battery_p_kw
    assert (d.p_kw <= day.export_kw + TOL).all()
    assert (d.p_kw >= -day.import_kw - d.import_violation_kw - TOL).all()
    assert (d.import_violation_kw <= TOL).all()
    assert (d.q_inverter_kvar >= day.q_min_kvar - TOL).all()
    assert (d.q_inverter_kvar <= day.q_max_kvar + TOL).all()
    assert (p_inv**2 + d.q_inverter_kvar**2 <= day.inverter_kva**2 + 1e-4).all()
    assert (d.pv_used_kw >= -TOL).all() and (d.pv_used_kw <= day.pv_kw + TOL).all()
    assert (np.abs(d.battery_p_kw) <= day.battery_kw + TOL).all()
    assert (d.soc_kwh >= -TOL).all() and (d.soc_kwh <= day.battery_kwh + TOL).all()
    # the state of charge follows the battery's one-way efficiency
    before = np.vstack([soc0, d.soc_kwh[:-1]])
    eta = day.efficiency
    b = d.battery_p_kw
    expected = np.where(b >= 0, before - b / eta, before - b * eta)
    np.testing.assert_allclose(d.soc_kwh, expected, atol=1e-5)
    assert np.isclose(d.p_kw, d.pv_used_kw + b - day.load_kw, atol=TOL).all()


@pytest.mark.slow
@pytest.mark.parametrize("first_day", [WINTER, SUMMER])
def test_settled_optimum_beats_rule_and_tou(first_day: int) -> None:
    world = _world(first_day)
    cost = {}
    for policy in ("rule", "tou", "optimum"):
        config = dataclasses.replace(world.config, policy=policy)
        summary = run_simulation(config, progress=False, world=world).summary
        cost[policy] = summary["prosumer_cost_eur"]
        if policy == "optimum":
            assert summary["voltage_violations"] == 0
            assert summary["envelope_violations"] == 0
            assert summary["import_violation_kwh"] == 0
    assert cost["optimum"] <= cost["rule"]
    assert cost["optimum"] <= cost["tou"]
    # the real settlement bills what the LP expected, up to its Var model (ex-post)
    lp_cost = sum(d.cost_eur for d in optimise_run(world).day_dispatch)
    assert cost["optimum"] == pytest.approx(lp_cost, rel=1e-3)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--policy", "rule"], "policy='rule': p2pvar optimum always plays the optimum"),
        (["--days", "0"], "days=0 must be a positive integer"),
        (["--network", "nowhere"], "nowhere"),
    ],
)
def test_cli_bad_input_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["optimum", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("p2pvar: error: ") and message in err and "\n" not in err


@pytest.mark.slow
def test_cli_writes_simulate_tables_and_the_dispatch_the_market_played(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    argv = ["optimum", "--market", "var", "--out", str(out), "--json", "--no-progress"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    for name in ("intervals", "prosumers", "trades", "buses", "messages", "optimum",
                 "optimum_days"):  # fmt: skip
        assert (out / f"{name}.csv").is_file(), name
    plan = pd.read_csv(out / "optimum.csv")
    played = pd.read_csv(out / "prosumers.csv")
    assert len(plan) == len(played) == 24 * played["prosumer"].nunique()
    for column in ("battery_p_kw", "q_inverter_kvar", "p_kw", "soc_kwh"):
        np.testing.assert_allclose(played[column], plan[column], atol=1e-4, err_msg=column)
    days = pd.read_csv(out / "optimum_days.csv")
    assert summary["lp_cost_eur"] == pytest.approx(days["lp_cost_eur"].sum())
    assert summary["prosumer_cost_eur"] == pytest.approx(summary["lp_cost_eur"], rel=1e-3)
