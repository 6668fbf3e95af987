"""Same seed, same policy: ``deploy`` (one process per agent) gives the tables of ``simulate``."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from abm.config import SimConfig
from abm.deploy.launcher import deploy
from abm.deploy.spec import DeployOptions
from abm.sim.simulation import run_simulation
from analysis.tables import DEPLOY_MESSAGES, DEPLOY_TABLES

#: Each test starts one OS process per agent (deploy): long.
pytestmark = pytest.mark.slow

#: Tables that must be identical between the backends (timings and counters differ).
RESULT_TABLES = ("intervals", "prosumers", "trades", "buses")
#: Prosumers of the ieee33 scenario (``ieee33_with``) the tests deploy but the first, which
#: plays the whole network (32 prosumers, 33 processes).
N_PROSUMERS = 8


def assert_same_results(sim_dir, deploy_dir) -> None:
    """Every result table written by both backends is identical, value for value."""
    for name in RESULT_TABLES:
        expected = pd.read_csv(sim_dir / f"{name}.csv")
        got = pd.read_csv(deploy_dir / f"{name}.csv")
        pd.testing.assert_frame_equal(got, expected, check_exact=True, obj=name)


def test_auction_over_ipc_matches_simulate(tmp_path):
    """The whole default network."""
    config = SimConfig(market="multi", protocol="auction", policy="rule")
    run_simulation(config, tmp_path / "sim", progress=False)
    result = deploy(config, DeployOptions(transport="ipc"), tmp_path / "dep")
    assert_same_results(tmp_path / "sim", tmp_path / "dep")
    assert result.complete and result.status["last_completed_interval"] == 23
    tables = result.tables
    assert len(tables["trades"]) > 0
    # Every process ran once and ended cleanly.
    procs = tables["processes"]
    assert len(procs) == 33 and (procs["incarnations"] == 1).all()
    assert (procs["status"] == 0).all()
    assert all(codes == [0] for codes in result.status["exit_codes"].values())
    # Overhead tables: per interval and kind, and per interval timings.
    msgs = tables["messages"]
    assert list(msgs.columns) == list(DEPLOY_MESSAGES.column_names)
    per_interval = msgs[msgs["interval"] >= 0]
    assert set(per_interval["interval"]) == set(range(24))
    assert {"Envelopes", "Phase", "Bid", "Offer", "TradeConfirm", "PhaseAck"} <= set(msgs["kind"])
    assert (per_interval["latency_us_p50"].dropna() > 0).all()
    # Acks: one per prosumer at orders and confirm; at schedule the Schedule is the ack.
    sent = per_interval.pivot_table("messages", "interval", "kind", aggfunc="sum")
    assert (sent["PhaseAck"] == 2 * 32).all() and (sent["Schedule"] == 32).all()
    timing = tables["timing"]
    assert list(timing.columns) == list(DEPLOY_TABLES["timing"].column_names) and len(timing) == 24
    assert (timing["wall_ms"] >= timing["dso_compute_ms"]).all()
    assert (timing["n_present"] == 32).all()
    phases = tables["phases"]
    assert len(phases) == 24 * 4
    assert set(phases["phase"]) == {"orders", "clear", "confirm", "schedule"}
    assert (phases.groupby("interval")["ms"].sum() <= timing["wall_ms"].to_numpy()).all()
    assert tables["refusals"]["count"].sum() == 0
    config_doc = json.loads((tmp_path / "dep" / "config.json").read_text())
    assert config_doc["backend"] == "multi-process" and config_doc["seed"] == 0


def test_auction_without_batch_frames_matches_simulate(tmp_path, ieee33_with):
    """The baseline of ``bench deploy``: every message its own frame, the same results."""
    scenario = str(ieee33_with(N_PROSUMERS))
    config = SimConfig(
        market="multi", protocol="auction", policy="random", seed=5, scenario=scenario
    )
    run_simulation(config, tmp_path / "sim", progress=False)
    options = DeployOptions(transport="ipc", batch_frames=False)
    result = deploy(config, options, tmp_path / "dep")
    assert_same_results(tmp_path / "sim", tmp_path / "dep")
    msgs = result.tables["messages"]
    assert "Batch" not in set(msgs["kind"])
    assert (msgs["frames"] == msgs["deliveries"]).all()  # one frame per message received


def test_bilateral_random_over_tcp_hosts_and_curve_matches_simulate(tmp_path, ieee33_with):
    """Three 'hosts' on loopback addresses, CURVE keys, per-agent policy specs."""
    scenario = str(ieee33_with(N_PROSUMERS))
    config = SimConfig(
        market="multi", protocol="bilateral", policy="random", seed=3, scenario=scenario
    )
    hosts = {
        "dso_host": "h0",
        "hosts": {
            "h0": {"address": "127.0.0.2"},
            "h1": {"address": "127.0.0.3", "agents": [f"p{i:02d}" for i in range(1, 4)]},
            "h2": {"address": "127.0.0.4", "agents": "*"},
        },
    }
    (tmp_path / "hosts.json").write_text(json.dumps(hosts))
    # Some prosumers load their policy through a factory spec: the same random policy.
    factory = {f"p{i:02d}": "abm.deploy.policies:random" for i in (2, 7, 8)}
    (tmp_path / "policies.json").write_text(json.dumps(factory))
    options = DeployOptions(
        transport="tcp",
        hosts=str(tmp_path / "hosts.json"),
        keys=str(tmp_path / "keys"),
        policies=str(tmp_path / "policies.json"),
    )
    run_simulation(config, tmp_path / "sim", progress=False)
    result = deploy(config, options, tmp_path / "dep")
    assert_same_results(tmp_path / "sim", tmp_path / "dep")
    assert len(result.tables["trades"]) > 0
    procs = result.tables["processes"].set_index("agent")
    assert procs.loc["dso", "host"] == "h0"
    assert procs.loc["p03", "host"] == "h1" and procs.loc["p06", "host"] == "h2"
    spec = json.loads((tmp_path / "dep" / "deploy" / "run.json").read_text())
    assert spec["agents"]["p03"]["upstream"].startswith("tcp://127.0.0.3:0;127.0.0.2:")
    assert spec["agents"]["p07"]["policy"] == "abm.deploy.policies:random"
    assert (tmp_path / "keys" / "private_keys" / "p03.key_secret").is_file()
    relay = result.status["relay"]
    assert relay["refused_unauthenticated"] == 0 and relay["joins"] == N_PROSUMERS + 1


def test_market_without_p2p_matches_simulate(tmp_path, ieee33_with):
    """No clearing ticks: orders, then schedule."""
    config = SimConfig(market="grid-only", scenario=str(ieee33_with(N_PROSUMERS)))
    run_simulation(config, tmp_path / "sim", progress=False)
    deploy(config, DeployOptions(), tmp_path / "dep")
    assert_same_results(tmp_path / "sim", tmp_path / "dep")


def test_mpc_over_ipc_matches_simulate(tmp_path, ieee33_with):
    """Each prosumer process solves its own MPC LP: the same tables as ``simulate``."""
    scenario = str(ieee33_with(N_PROSUMERS))
    config = SimConfig(market="multi", protocol="auction", policy="mpc", scenario=scenario)
    run_simulation(config, tmp_path / "sim", progress=False)
    result = deploy(config, DeployOptions(transport="ipc"), tmp_path / "dep")
    assert_same_results(tmp_path / "sim", tmp_path / "dep")
    assert result.complete
