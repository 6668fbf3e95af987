"""``p2pvar simulate``: a subprocess smoke run, the JSON summary, the settlement options and
bad arguments (those in-process: the interpreter start-up is not their subject)."""

import json
import subprocess
import sys
from functools import partial

import pandas as pd
import pytest

from tests.helpers import p2pvar_here

P2PVAR = [sys.executable, "-m", "abm.cli.main"]


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*P2PVAR, *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow  # a full-day run in a subprocess
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


def test_simulate_json_summary(capsys):
    proc = p2pvar_here(
        capsys, "simulate", "--days", "1", "--market", "grid-only", "--json", "--no-progress"
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["p2p_volume_kwh"] == 0.0 and summary["var_volume_kvarh"] == 0.0


def test_bad_arguments_give_one_line_errors(capsys):
    run = partial(p2pvar_here, capsys)
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
    proc = run("simulate", "--network-charge-eur-per-kwh", "-0.1", "--no-progress")
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "p2pvar: error: network_charge_eur_per_kwh=-0.1 must be a finite number >= 0"
    )
    proc = run("simulate", "--var-pricing", "ex-aequo")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


@pytest.mark.slow  # three full-day runs
def test_settlement_options_reach_the_run(capsys):
    """``--var-pricing`` and ``--network-charge-eur-per-kwh`` change the bill as documented."""
    run = partial(p2pvar_here, capsys)
    args = ("simulate", "--days", "1", "--json", "--no-progress")
    free = json.loads(run(*args, "--network-charge-eur-per-kwh", "0").stdout)
    charged = json.loads(run(*args, "--network-charge-eur-per-kwh", "0.05").stdout)
    assert free["network_charge_eur"] == 0.0
    assert charged["network_charge_eur"] == pytest.approx(
        0.05 * charged["p2p_volume_kwh"]  # half from each side of every traded kWh
    )
    ex_ante = json.loads(run(*args, "--var-pricing", "ex-ante").stdout)
    assert ex_ante["var_revenue_eur"] > 0
    assert ex_ante["var_revenue_eur"] != charged["var_revenue_eur"]


def test_version_prints_the_package_version():
    from importlib.metadata import version

    proc = run("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"p2pvar {version('p2pvar')}"
