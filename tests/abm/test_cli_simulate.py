"""Subprocess smoke runs of ``p2pvar simulate`` and ``p2pvar bench market``; bad arguments."""

import json
import subprocess
import sys

import pandas as pd

P2PVAR = [sys.executable, "-m", "abm.cli"]


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*P2PVAR, *args], capture_output=True, text=True, timeout=timeout)


def test_simulate_writes_tables_config_and_summary(tmp_path):
    out = tmp_path / "run"
    proc = run("simulate", "--days", "1", "--seed", "7", "--out", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "prosumer_cost_eur" in proc.stdout and "messages_per_interval" in proc.stdout
    config = json.loads((out / "config.json").read_text())
    assert config["seed"] == 7 and config["config"]["market"] == "multi"
    assert config["versions"]["pandapower"] != "not installed"
    assert len(config["scenario"]["prosumers"]) == 32
    for name in ("intervals", "prosumers", "trades", "buses", "messages"):
        frame = pd.read_csv(out / f"{name}.csv")
        assert len(frame) > 0, name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["intervals"] == 24
    assert not list(out.glob("*.tmp"))


def test_simulate_json_summary():
    proc = run("simulate", "--days", "1", "--market", "grid-only", "--json", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["p2p_volume_kwh"] == 0.0 and summary["var_volume_kvarh"] == 0.0


def test_bad_arguments_give_one_line_errors():
    proc = run("simulate", "--days", "0", "--no-progress")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "p2pvar: error: days=0 must be a positive integer"
    proc = run("simulate", "--network", "atlantis", "--no-progress")
    assert proc.returncode == 2 and "atlantis" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    proc = run("simulate", "--first-day", "80", "--days", "1")
    assert proc.returncode == 2 and "73 test days" in proc.stderr
    proc = run("simulate", "--market", "barter")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr
