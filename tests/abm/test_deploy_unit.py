"""Deployment building blocks without processes: spec, hosts, policies, guard, records, feeder."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from abm.config import SimConfig
from abm.deploy.errors import PolicySpecError, RunSpecError
from abm.deploy.faults import Fault
from abm.deploy.feeder_file import load_feeder, save_feeder
from abm.deploy.guard import InboundGuard
from abm.deploy.hosts import hosts_from_dict
from abm.deploy.merge import completed_row
from abm.deploy.policies import load_policy
from abm.deploy.records import RecordWriter, read_records
from abm.deploy.spec import (
    AgentEntry,
    DeployOptions,
    RunSpec,
    load_run_spec,
    run_spec_from_dict,
    run_spec_to_dict,
    save_run_spec,
)
from abm.errors import ConfigError
from abm.inputs.run_inputs import RunInputs, build_run_inputs
from agents.policy import ACTION_DIM, Observation
from analysis.tables import outcome_row
from messaging.endpoints import RelayEndpoints
from messaging.messages import Bid, Heartbeat, Join

UP, DOWN = "ipc:///tmp/x/up.sock", "ipc:///tmp/x/down.sock"


def _spec(**changes) -> RunSpec:
    agents = {
        "dso": AgentEntry("dso", "local", UP, DOWN),
        "p01": AgentEntry("prosumer", "local", UP, DOWN, "random", Fault(3, "orders", "stall", 10)),
    }
    spec = RunSpec(
        sim=SimConfig(protocol="bilateral", seed=7),
        options=DeployOptions(phase_deadline_ms=500),
        relay=RelayEndpoints(UP, DOWN),
        agents=agents,
        records_dir="/tmp/x/agents",
        feeder_file="/tmp/x/feeder.json",
    )
    return dataclasses.replace(spec, **changes)


def test_run_spec_round_trip(tmp_path):
    spec = _spec()
    path = save_run_spec(spec, tmp_path / "run.json")
    back = load_run_spec(path)
    assert back == spec
    assert back.prosumer_ids == ("p01",)
    assert back.entry("p01").fault == Fault(3, "orders", "stall", 10)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(format_version=9), "format_version=9"),
        (lambda d: d["sim"].update(protocol="auctionx"), "protocol='auctionx'"),
        (lambda d: d["options"].update(phase_deadline_ms=0), "phase_deadline_ms=0"),
        (lambda d: d["agents"]["p01"].update(role="boss"), "agents.p01.role='boss'"),
        (lambda d: d["agents"].pop("dso"), "DSO entries"),
        (lambda d: d["agents"]["p01"]["fault"].update(phase="lunch"), "fault.phase='lunch'"),
        (lambda d: d["agents"]["p01"].update(color="red"), "agents.p01.color: unknown field"),
        (lambda d: d["relay"].update(upstream=""), "relay.upstream=''"),
    ],
)
def test_run_spec_errors_name_the_field(mutate, message):
    data = json.loads(json.dumps(run_spec_to_dict(_spec())))
    mutate(data)
    with pytest.raises(RunSpecError, match=message.replace("(", r"\(").replace(".", r"\.")):
        run_spec_from_dict(data)


def test_run_spec_file_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(RunSpecError, match="not valid JSON"):
        load_run_spec(bad)
    with pytest.raises(RunSpecError, match="cannot read"):
        load_run_spec(tmp_path / "missing.json")
    with pytest.raises(RunSpecError, match="not an agent"):
        _spec().entry("p99")


def test_deploy_options_validation():
    with pytest.raises(ConfigError, match="transport='udp'"):
        DeployOptions(transport="udp")
    with pytest.raises(ConfigError, match="dso_silence_ms=1500"):
        DeployOptions(dso_silence_ms=1500)
    with pytest.raises(ConfigError, match="needs transport=tcp"):
        DeployOptions(hosts="hosts.json")


HOSTS = {
    "dso_host": "h0",
    "upstream_port": 47001,
    "downstream_port": 47002,
    "hosts": {
        "h0": {"address": "127.0.0.2"},
        "h1": {"address": "127.0.0.3", "agents": ["p02"]},
        "h2": {"address": "127.0.0.4", "agents": "*", "launch": ["ip", "netns", "exec", "n2"]},
    },
}


def test_hosts_file_places_agents_and_builds_source_endpoints():
    hosts = hosts_from_dict(HOSTS)
    assert hosts.assign(["p01", "p02", "p03"]) == {"p01": "h2", "p02": "h1", "p03": "h2"}
    assert hosts.endpoints("h0") == ("tcp://127.0.0.2:47001", "tcp://127.0.0.2:47002")
    assert hosts.endpoints("h1") == (
        "tcp://127.0.0.3:0;127.0.0.2:47001",
        "tcp://127.0.0.3:0;127.0.0.2:47002",
    )
    assert hosts.hosts["h2"].launch == ("ip", "netns", "exec", "n2")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(dso_host="h9"), "dso_host='h9'"),
        (lambda d: d["hosts"]["h1"].update(address="host-one"), "h1.address='host-one'"),
        (lambda d: d["hosts"]["h0"].update(agents="*"), "more than one host"),
        (lambda d: d.update(upstream_port=70000), "upstream_port=70000"),
        (lambda d: d.update(downstream_port=47001), "both 47001"),
        (lambda d: d["hosts"]["h1"].update(launch="ssh h1"), "h1.launch='ssh h1'"),
    ],
)
def test_hosts_file_errors(mutate, message):
    data = json.loads(json.dumps(HOSTS))
    mutate(data)
    with pytest.raises(RunSpecError, match=message.replace(".", r"\.").replace("*", r"\*")):
        hosts_from_dict(data)


def test_hosts_assign_refuses_unknown_and_doubled_agents():
    data = json.loads(json.dumps(HOSTS))
    data["hosts"]["h0"]["agents"] = ["p02"]
    with pytest.raises(RunSpecError, match="'p02' is already on"):
        hosts_from_dict(data).assign(["p01", "p02"])
    with pytest.raises(RunSpecError, match="'p02' is not a prosumer"):
        hosts_from_dict(HOSTS).assign(["p01"])


def _obs() -> Observation:
    """An observation with every number 1.0 and every flag true."""
    return Observation(
        **{f.name: True if f.type == "bool" else 1.0 for f in dataclasses.fields(Observation)}
    )


@pytest.fixture(scope="module")
def world() -> RunInputs:
    return build_run_inputs(SimConfig())


def test_policy_specs_baselines_and_factories(world):
    rng_a, rng_b = np.random.default_rng(1), np.random.default_rng(1)
    by_name = load_policy("random", rng_a, world, 0)
    by_factory = load_policy("abm.deploy.policies:random@unused.pt", rng_b, world, 0)
    obs = _obs()
    np.testing.assert_array_equal(by_name.act(obs), by_factory.act(obs))
    for name in ("rule", "tou"):
        assert len(load_policy(name, rng_a, world, 0).act(obs)) == ACTION_DIM


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("greedy", "not one of rule, random, tou, checkpoint:DIR, optimum, mpc"),
        ("mpc:oracle", "forecaster = 'oracle': unknown"),
        ("no.such.module:make", "cannot import no.such.module"),
        ("abm.deploy.policies:missing", "has no attribute 'missing'"),
        ("abm.deploy.policies:check_policy_spec", "the factory failed: TypeError"),
        ("operator:is_", "returned False, without act"),
        ("optimum", "runs in one process only"),
    ],
)
def test_policy_spec_errors(spec, message, world):
    with pytest.raises(PolicySpecError, match=message):
        load_policy(spec, np.random.default_rng(0), world, 0)


def test_guard_refuses_duplicates_replays_late_and_resets_on_join():
    guard = InboundGuard()
    assert guard.accept(Bid("p01", 4, 5, 1.0, 0.1), current_interval=4)
    assert not guard.accept(Bid("p01", 4, 5, 1.0, 0.1), current_interval=4)  # duplicate
    assert not guard.accept(Bid("p01", 4, 3, 1.0, 0.1), current_interval=4)  # replay
    assert not guard.accept(Bid("p01", 2, 9, 1.0, 0.1), current_interval=4)  # late
    # Control messages are numbered from the wall clock, independent of the market channel.
    assert guard.accept(Heartbeat("p01", 4, 10**18), current_interval=4)
    assert not guard.accept(Heartbeat("p01", 4, 10**18), current_interval=4)
    # A restarted process (new Join, higher control seq) restarts its market seqs at 0.
    assert guard.accept(Join("p01", 0, 10**18 + 10**12), current_interval=6)
    assert guard.accept(Bid("p01", 6, 0, 1.0, 0.1), current_interval=6)
    reasons = {reason for reason, _ in guard.refused}
    assert reasons == {"DuplicateMessage", "LateMessage"}
    assert sum(guard.refused.values()) == 4


@given(st.lists(st.integers(0, 50), max_size=40))
def test_guard_accepts_exactly_the_increasing_seqs(seqs):
    guard = InboundGuard()
    accepted = [s for s in seqs if guard.accept(Bid("p02", 0, s, 1.0, 0.1), 0)]
    expected, top = [], -1
    for s in seqs:
        if s > top:
            expected.append(s)
            top = s
    assert accepted == expected
    assert sum(guard.refused.values()) == len(seqs) - len(expected)


def test_records_survive_a_torn_last_line(tmp_path):
    path = tmp_path / "p01.jsonl"
    writer = RecordWriter(path)
    writer.write({"type": "row", "interval": 0, "value": np.float64(1.5), "n": np.int64(2)})
    writer.write({"type": "row", "interval": 1, "value": 2.5, "n": 3})
    writer.close()
    with open(path, "ab") as f:
        f.write(b'{"type": "row", "interv')  # killed mid-write
    got = read_records(path)
    assert [r["interval"] for r in got.records] == [0, 1]
    assert got.records[0]["value"] == 1.5 and got.records[0]["n"] == 2
    assert got.torn_lines == 1
    assert read_records(tmp_path / "none.jsonl").records == []


def test_a_row_booked_at_the_schedule_completes_to_the_settled_row(tmp_path):
    """The merge completes the row a prosumer booked at its ``Schedule`` (Var amount and
    voltage zero) with the DSO's ``Settlement`` figures into the row booked at settlement."""
    from abm.sim.model import MarketModel

    model = MarketModel(SimConfig(market="multi", policy="random", seed=7))
    model.step()
    writer = RecordWriter(tmp_path / "scheduled.jsonl")
    settled = {}
    for agent in model.prosumers:
        logic = agent.logic
        row = outcome_row(logic.book(0.0, 0.0))
        writer.write({"type": "scheduled", "interval": 0, "row": row, "trades": []})
        settled[logic.agent_id] = outcome_row(logic.last_outcome)
    writer.close()
    records = read_records(tmp_path / "scheduled.jsonl").records
    assert sum(row["var_eur"] != 0 for row in settled.values()) > len(settled) // 2
    for rec in records:
        want = settled[rec["row"]["prosumer"]]
        got = completed_row(rec, [want["var_eur"], want["vm_pu"]])
        assert got["type"] == "row" and got["row"] == want


@pytest.mark.parametrize("network", ["ieee33", "dso/data/simbench_lv_rural1.json"])
def test_feeder_snapshot_round_trip(tmp_path, network):
    from dso.networks import load_network
    from dso.trafo import Transformers

    feeder = load_network(network)
    back = load_feeder(save_feeder(feeder, tmp_path / "feeder.json"))
    for f in dataclasses.fields(feeder):
        a, b = getattr(feeder, f.name), getattr(back, f.name)
        pairs = [(a, b)]
        if isinstance(a, Transformers):  # a transformer feeder: every transformer field
            pairs = [(getattr(a, g.name), getattr(b, g.name)) for g in dataclasses.fields(a)]
        for x, y in pairs:
            if isinstance(x, np.ndarray):
                np.testing.assert_array_equal(x, y)
                assert x.dtype == y.dtype
            else:
                assert x == y, f.name
    (tmp_path / "old.json").write_text(json.dumps({"format_version": 0}))
    with pytest.raises(RunSpecError, match="format_version=0"):
        load_feeder(tmp_path / "old.json")


@pytest.mark.parametrize("market", ["multi", "p2p", "var", "grid-only"])
@pytest.mark.parametrize("protocol", ["auction", "bilateral"])
def test_interval_script_ticks_are_the_model_phases(market, protocol):
    from abm.config import market_has_p2p
    from abm.sim.model import MarketModel
    from agents.clearing import clearing_ticks

    config = SimConfig(market=market, protocol=protocol)
    clearing = clearing_ticks(protocol) if market_has_p2p(market) else ()
    script = config.interval_script()
    assert script.ticks == (("orders", 0), *clearing, ("schedule", 0))
    assert script.phases == ("open", *(name for name, _ in script.ticks), "settle")
    model = MarketModel(config)
    opened: list[tuple[str, int]] = []
    phase = model.dso.logic.phase
    model.dso.logic.phase = lambda name, round_=0: (
        opened.append((name, round_)) or phase(name, round_)
    )
    model.step()
    assert tuple(opened) == script.ticks
