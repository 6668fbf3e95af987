"""The prosumer scenario: defaults, validation, per-day profiles, JSON round trip, seeding."""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from abm.cli.args import add_config_args, config_from_args
from abm.errors import ConfigError
from abm.inputs.profiles import DAYS, load_profiles
from abm.inputs.scenario import (
    SCENARIO_FORMAT_VERSION,
    ProsumerSpec,
    Scenario,
    ScenarioOptions,
    Tariffs,
    default_scenario,
    load_scenario,
    save_scenario,
    scenario_for,
    scenario_from_dict,
    scenario_profiles,
    scenario_to_dict,
)

# Baran & Wu (1989) 33-bus loads of buses 1..32 (bus 0 is the substation), kW and kvar.
IEEE33_P_KW = [100, 90, 120, 60, 60, 200, 200, 60, 60, 45, 60, 60, 120, 60, 60, 60,
               90, 90, 90, 90, 90, 90, 420, 420, 60, 60, 60, 120, 200, 150, 210, 60]  # fmt: skip
IEEE33_Q_KVAR = [60, 40, 80, 30, 20, 100, 100, 20, 20, 30, 35, 35, 80, 10, 20, 20,
                 40, 40, 40, 40, 40, 50, 200, 200, 25, 25, 20, 70, 600, 70, 100, 40]  # fmt: skip


def ieee33_loads() -> tuple[np.ndarray, np.ndarray]:
    p_kw = np.array([0.0, *IEEE33_P_KW])
    q_kvar = np.array([0.0, *IEEE33_Q_KVAR])
    assert (p_kw.sum(), q_kvar.sum()) == (3715.0, 2300.0)  # the textbook totals
    return p_kw, q_kvar


def swiss_like_loads(n_bus: int = 162, n_loaded: int = 78) -> np.ndarray:
    rng = np.random.default_rng(7)
    p_kw = np.zeros(n_bus)
    p_kw[1 + rng.choice(n_bus - 1, n_loaded, replace=False)] = rng.uniform(20, 400, n_loaded)
    return p_kw


@pytest.fixture(scope="module")
def ieee33() -> Scenario:
    p_kw, q_kvar = ieee33_loads()
    return default_scenario("ieee33", p_kw, 0, load_q_kvar=q_kvar, seed=3)


def test_ieee33_default_has_one_prosumer_per_load_bus(ieee33: Scenario) -> None:
    p_kw, q_kvar = ieee33_loads()
    assert ieee33.prosumer_ids == tuple(f"p{i:02d}" for i in range(1, 33))
    assert ieee33.prosumer_buses.tolist() == list(range(1, 33))
    assert ieee33.passive_loads == () and ieee33.n_bus == 33 and ieee33.slack_bus == 0
    for spec in ieee33.prosumers:
        assert spec.load_peak_kw == p_kw[spec.bus]
        assert spec.pv_kwp in (0.0, pytest.approx(4.0 * spec.load_peak_kw))
        assert spec.inverter_kva == pytest.approx(max(1.1 * spec.pv_kwp, spec.battery_kw))
        assert spec.power_factor_load == pytest.approx(
            p_kw[spec.bus] / np.hypot(p_kw[spec.bus], q_kvar[spec.bus])
        )
    batteries = [s for s in ieee33.prosumers if s.battery_kwh > 0]
    assert len(batteries) == 16
    assert sum(s.pv_kwp > 0 for s in ieee33.prosumers) == 16
    for spec in batteries:
        assert spec.battery_kw == pytest.approx(0.5 * spec.load_peak_kw)
        assert spec.battery_kwh == pytest.approx(2.0 * spec.battery_kw)
        assert spec.battery_efficiency == 0.95
    profiles = load_profiles()
    assert {s.load_profile for s in ieee33.prosumers} == set(profiles.load_names)
    assert {s.pv_profile for s in ieee33.prosumers} == set(profiles.pv_names)


def test_162_bus_default_has_78_prosumers() -> None:
    p_kw = swiss_like_loads()
    scenario = default_scenario("swiss", p_kw, 0)
    assert len(scenario.prosumers) == 78 and scenario.n_bus == 162
    assert scenario.prosumer_ids[0] == "p01" and scenario.prosumer_ids[-1] == "p78"
    assert scenario.prosumer_buses.tolist() == np.flatnonzero(p_kw).tolist()
    assert all(s.power_factor_load == 0.95 for s in scenario.prosumers)
    assert sum(s.battery_kwh > 0 for s in scenario.prosumers) == 39


def test_load_at_the_slack_bus_stays_passive() -> None:
    p_kw = np.array([50.0, 10.0, 0.0, 20.0])
    scenario = default_scenario("tiny", p_kw, 0)
    assert scenario.prosumer_buses.tolist() == [1, 3]
    assert [(load.bus, load.load_peak_kw) for load in scenario.passive_loads] == [(0, 50.0)]


def test_same_seed_same_scenario_other_seed_other_assignment() -> None:
    p_kw, q_kvar = ieee33_loads()
    a = default_scenario("ieee33", p_kw, 0, load_q_kvar=q_kvar, seed=11)
    b = default_scenario("ieee33", p_kw.copy(), 0, load_q_kvar=q_kvar.copy(), seed=11)
    c = default_scenario("ieee33", p_kw, 0, load_q_kvar=q_kvar, seed=12)
    assert a == b
    assert json.dumps(scenario_to_dict(a)) == json.dumps(scenario_to_dict(b))
    assert a != c


def test_day_profiles_shapes_and_scaling(ieee33: Scenario) -> None:
    day = scenario_profiles(ieee33, 172)
    n = len(ieee33.prosumers)
    assert day.load_p_kw.shape == day.load_q_kvar.shape == day.pv_p_kw.shape == (24, n)
    assert day.passive_p_kw.shape == (24, 33) and not day.passive_p_kw.any()
    profiles = load_profiles()
    for j, spec in enumerate(ieee33.prosumers):
        pv_kw_per_kwp = profiles.pv_p_kw_per_kwp[172, :, profiles.pv_index(spec.pv_profile)]
        np.testing.assert_allclose(day.pv_p_kw[:, j], spec.pv_kwp * pv_kw_per_kwp)
        tan_phi = np.tan(np.arccos(spec.power_factor_load))
        np.testing.assert_allclose(day.load_q_kvar[:, j], day.load_p_kw[:, j] * tan_phi)
    with_pv = [j for j, spec in enumerate(ieee33.prosumers) if spec.pv_kwp > 0]
    assert day.pv_p_kw[:3].sum() == 0.0 and day.pv_p_kw[10:14, with_pv].min() > 0.0
    assert day.retail_eur_per_kwh.tolist() == list(ieee33.tariffs.retail_eur_per_kwh)


def test_each_prosumer_reaches_its_load_peak_once_a_year(ieee33: Scenario) -> None:
    peaks = np.max([scenario_profiles(ieee33, d).load_p_kw.max(axis=0) for d in range(DAYS)], 0)
    np.testing.assert_allclose(peaks, [s.load_peak_kw for s in ieee33.prosumers])


def test_quarter_hour_scenario_repeats_hourly_prices() -> None:
    p_kw, _ = ieee33_loads()
    scenario = default_scenario("ieee33", p_kw, 0, options=ScenarioOptions(interval_min=15))
    day = scenario_profiles(scenario, 0)
    assert day.load_p_kw.shape == (96, 32) and day.retail_eur_per_kwh.shape == (96,)
    np.testing.assert_array_equal(day.retail_eur_per_kwh[::4], scenario.tariffs.retail_eur_per_kwh)


def test_default_tariffs_are_time_of_use() -> None:
    tariffs = Tariffs()
    assert tariffs.retail_eur_per_kwh[3] == 0.12
    assert tariffs.retail_eur_per_kwh[12] == 0.22
    assert tariffs.retail_eur_per_kwh[18] == 0.32
    assert set(tariffs.feed_in_eur_per_kwh) == {0.05}


def test_partial_prosumer_share_leaves_passive_loads() -> None:
    p_kw, _ = ieee33_loads()
    scenario = default_scenario("ieee33", p_kw, 0, options=ScenarioOptions(prosumer_fraction=0.25))
    assert len(scenario.prosumers) == 8 and len(scenario.passive_loads) == 24
    day = scenario_profiles(scenario, 30)
    passive_buses = sorted(load.bus for load in scenario.passive_loads)
    assert np.flatnonzero(day.passive_p_kw.any(axis=0)).tolist() == passive_buses
    assert (day.passive_q_kvar >= 0).all()


def test_scenario_for_reads_a_feeder_duck_typed() -> None:
    p_kw, q_kvar = ieee33_loads()
    feeder = SimpleNamespace(name="ieee33", n_bus=33, slack_bus=0, load_p_kw=p_kw,
                             load_q_kvar=q_kvar, bus_names=[str(b) for b in range(33)])  # fmt: skip
    direct = default_scenario("ieee33", p_kw, 0, load_q_kvar=q_kvar, seed=5)
    assert scenario_for(feeder, seed=5) == direct


def test_options_derive_cli_flags() -> None:
    parser = argparse.ArgumentParser()
    add_config_args(parser, ScenarioOptions)
    options = config_from_args(ScenarioOptions, parser.parse_args(["--pv-ratio", "2.5"]))
    assert options == ScenarioOptions(pv_ratio=2.5)


def _spec(**changes: object) -> ProsumerSpec:
    base = dict(prosumer_id="p01", bus=1, load_peak_kw=10.0, load_profile="H0-A",
                pv_profile="PV1", pv_kwp=15.0, inverter_kva=16.5, battery_kwh=10.0,
                battery_kw=5.0, battery_efficiency=0.95, power_factor_load=0.95)  # fmt: skip
    base.update(changes)
    return ProsumerSpec(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"pv_kwp": -1.0}, "pv_kwp = -1.0"),
        ({"battery_efficiency": 0.0}, "battery_efficiency = 0.0"),
        ({"battery_efficiency": 1.2}, "battery_efficiency = 1.2"),
        ({"power_factor_load": float("nan")}, "power_factor_load = nan"),
        ({"load_profile": "H0-Z"}, "load_profile = 'H0-Z'"),
        ({"pv_profile": "PV0"}, "pv_profile = 'PV0'"),
        ({"bus": -2}, "bus = -2"),
        ({"bus": True}, "bus = True"),
        ({"battery_kw": 0.0}, "battery_kw = 0.0"),
        ({"load_peak_kw": "10"}, "load_peak_kw = '10'"),
        ({"prosumer_id": ""}, "prosumer_id = ''"),
        ({"initial_soc_fraction": 1.5}, "initial_soc_fraction = 1.5: must be <= 1.0"),
        ({"initial_soc_fraction": -0.1}, "initial_soc_fraction = -0.1"),
    ],
)
def test_bad_prosumer_value_names_field_and_value(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        _spec(**changes)
    assert message in str(info.value)


def test_initial_state_of_charge_is_a_scenario_field() -> None:
    """Default 0.5, optional in a scenario file, and where every run's batteries start."""
    from abm.config import SimConfig
    from abm.inputs.run_inputs import build_run_inputs, make_prosumer
    from agents.policy import RulePolicy
    from dso.networks import load_network

    spec = _spec()
    assert spec.initial_soc_fraction == 0.5
    data = dataclasses.asdict(spec)
    del data["initial_soc_fraction"]
    assert ProsumerSpec(**data) == spec
    feeder = load_network("ieee33")
    scenario = scenario_for(feeder, options=ScenarioOptions(initial_soc_fraction=0.8))
    world = build_run_inputs(SimConfig(), feeder=feeder, scenario=scenario)
    for i, p in enumerate(scenario.prosumers):
        assert make_prosumer(world, i, RulePolicy()).soc_kwh == 0.8 * p.battery_kwh


def _scenario(**changes: object) -> Scenario:
    base = dict(network="t", n_bus=4, slack_bus=0, prosumers=(_spec(),), passive_loads=())
    base.update(changes)
    return Scenario(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"prosumers": (_spec(bus=4),)}, "prosumers[0].bus = 4"),
        ({"prosumers": (_spec(bus=0),)}, "prosumers[0].bus = 0: is the slack bus"),
        ({"prosumers": (_spec(), _spec(bus=2))}, "prosumers[1].prosumer_id = 'p01': duplicate"),
        ({"slack_bus": 9}, "slack_bus = 9"),
        ({"interval_min": 20}, "interval_min = 20"),
        ({"network": ""}, "network = ''"),
        ({"prosumers": ({"bus": 1},)}, "prosumers[0] = {'bus': 1}"),
    ],
)
def test_bad_scenario_value_names_field_and_value(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        _scenario(**changes)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"retail_eur_per_kwh": (0.2,) * 23}, "retail_eur_per_kwh has 23 values"),
        ({"feed_in_eur_per_kwh": (0.5,) * 24}, "feed_in_eur_per_kwh[0] = 0.5"),
        ({"retail_eur_per_kwh": (float("inf"),) * 24}, "retail_eur_per_kwh[0] = inf"),
    ],
)
def test_bad_tariff_names_field_and_value(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        Tariffs(**changes)  # type: ignore[arg-type]
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("load_p_kw", "kwargs", "message"),
    [
        ([0.0, -5.0, 3.0], {}, "load_p_kw[1] = -5.0"),
        ([0.0, 5.0], {"load_q_kvar": np.array([0.0, -1.0])}, "load_q_kvar[1] = -1.0"),
        ([0.0, 5.0], {"load_q_kvar": np.zeros(3)}, "load_q_kvar has shape (3,)"),
        ([0.0, 5.0], {"options": {"pv_ratio": -1.0}}, "pv_ratio = -1.0"),
        ([0.0, 5.0], {"options": {"battery_fraction": 1.5}}, "battery_fraction = 1.5"),
    ],
)
def test_bad_default_scenario_input_names_field_and_value(
    load_p_kw: list[float], kwargs: dict, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        if "options" in kwargs:
            kwargs = {"options": ScenarioOptions(**kwargs["options"])}
        default_scenario("t", np.array(load_p_kw), 0, **kwargs)
    assert message in str(info.value)


def test_json_round_trip_and_file_round_trip(ieee33: Scenario, tmp_path: Path) -> None:
    data = json.loads(json.dumps(scenario_to_dict(ieee33)))
    assert data["format_version"] == SCENARIO_FORMAT_VERSION
    assert scenario_from_dict(data) == ieee33
    path = save_scenario(ieee33, tmp_path / "run" / "scenario.json")
    assert load_scenario(path) == ieee33


def test_user_file_with_edits_is_validated(ieee33: Scenario, tmp_path: Path) -> None:
    data = scenario_to_dict(ieee33)
    data["prosumers"] = [dataclasses.asdict(p) for p in ieee33.prosumers[:2]]
    data["prosumers"][1]["battery_efficiency"] = 1.5
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r"mine\.json: prosumer 'p02': battery_efficiency = 1\.5"):
        load_scenario(path)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(format_version=99), "scenario.format_version = 99"),
        (lambda d: d.update(colour="red"), "scenario.colour: unknown field"),
        (lambda d: d.pop("prosumers"), "scenario.prosumers: missing field"),
        (lambda d: d["prosumers"][0].pop("bus"), "scenario.prosumers[0].bus: missing field"),
        (lambda d: d["tariffs"].update(vat=0.2), "scenario.tariffs.vat: unknown field"),
        (lambda d: d.update(prosumers="p01"), "scenario.prosumers = 'p01'"),
    ],
)
def test_bad_scenario_dict_names_the_field(
    ieee33: Scenario, edit: Callable[[dict], object], message: str
) -> None:
    data = json.loads(json.dumps(scenario_to_dict(ieee33)))
    edit(data)
    with pytest.raises(ConfigError) as info:
        scenario_from_dict(data)
    assert message in str(info.value)


def test_unreadable_scenario_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_scenario(tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ConfigError, match=r"broken\.json: not valid JSON"):
        load_scenario(broken)


@given(
    loads=st.lists(st.sampled_from([0.0, 0.0, 3.5, 10.0, 120.0, 400.0]), min_size=2, max_size=60),
    seed=st.integers(0, 2**32 - 1),
    prosumer_fraction=st.sampled_from([0.0, 0.3, 1.0]),
    battery_fraction=st.sampled_from([0.0, 0.5, 1.0]),
)
def test_default_scenario_invariants(
    loads: list[float], seed: int, prosumer_fraction: float, battery_fraction: float
) -> None:
    p_kw = np.array(loads)
    options = ScenarioOptions(prosumer_fraction=prosumer_fraction,
                              battery_fraction=battery_fraction)  # fmt: skip
    scenario = default_scenario("h", p_kw, 0, options=options, seed=seed)
    hosts = [p.bus for p in scenario.prosumers]
    passive = [load.bus for load in scenario.passive_loads]
    assert sorted(hosts + passive) == np.flatnonzero(p_kw).tolist()
    loaded = int(np.count_nonzero(p_kw[1:]))
    assert len(hosts) == int(np.floor(prosumer_fraction * loaded + 0.5))
    assert sum(p.battery_kwh > 0 for p in scenario.prosumers) == int(
        np.floor(battery_fraction * len(hosts) + 0.5)
    )
    assert scenario_from_dict(json.loads(json.dumps(scenario_to_dict(scenario)))) == scenario
    assert scenario == default_scenario("h", p_kw, 0, options=options, seed=seed)


def test_static_generators_become_passive_generation() -> None:
    """Issue 22: a feeder's static generators follow a PV profile scaled by their rating,
    as passive injection; the prosumers stay as without them."""
    from abm.inputs.profiles import load_profiles as profiles_of
    from abm.inputs.scenario import (
        scenario_for,
        scenario_from_dict,
        scenario_profiles,
        scenario_to_dict,
    )
    from dso.networks import DATA_DIR, load_network

    feeder = load_network(str(DATA_DIR / "simbench_lv_rural1.json"))
    scenario = scenario_for(feeder, seed=3)
    gens = {g.bus: g for g in scenario.passive_generators}
    assert sorted(gens) == np.flatnonzero(feeder.gen_kwp).tolist() and len(gens) == 4
    assert all(g.rated_kw == feeder.gen_kwp[g.bus] for g in gens.values())
    without = scenario_for(dataclasses.replace(feeder, gen_kwp=np.zeros(feeder.n_bus)), seed=3)
    assert without.prosumers == scenario.prosumers and without.passive_generators == ()
    day = 180
    pv = profiles_of().pv_p_kw_per_kwp[day]
    got, base = scenario_profiles(scenario, day), scenario_profiles(without, day)
    for bus, g in gens.items():
        output_kw = pv[:, profiles_of().pv_index(g.pv_profile)] * g.rated_kw
        np.testing.assert_allclose(base.passive_p_kw[:, bus] - got.passive_p_kw[:, bus], output_kw)
    assert (got.passive_p_kw < 0).any()  # a bus that generates more than it consumes
    assert scenario_from_dict(scenario_to_dict(scenario)) == scenario
