"""``p2pvar deploy``, ``p2pvar agent`` and ``p2pvar bench deploy`` as subprocesses (their
one-line errors in-process: the interpreter start-up is not their subject)."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from abm.deploy.records import read_records
from tests.helpers import default_sigint, p2pvar_here

#: Each test starts one OS process per agent (deploy): long.
pytestmark = pytest.mark.slow

#: Bound of every CLI call here, s.
CLI_TIMEOUT_S = 180


def p2pvar(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "abm.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        **kwargs,
    )


@pytest.fixture(scope="module")
def small_scenario(ieee33_with):
    """ieee33 with 4 prosumers (fast to deploy)."""
    return ieee33_with(4)


def test_deploy_runs_and_prints_json(tmp_path, small_scenario):
    out = tmp_path / "run"
    proc = p2pvar(
        "deploy", "--scenario", str(small_scenario), "--protocol", "bilateral",
        "--transport", "tcp", "--out", str(out), "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["intervals"] == 24 and summary["interval_ms_median"] > 0
    for name in ("intervals", "prosumers", "trades", "buses", "messages", "timing", "phases",
                 "agent_messages", "refusals", "processes"):  # fmt: skip
        assert (out / f"{name}.csv").is_file(), name
    assert json.loads((out / "status.json").read_text())["complete"] is True


def test_dry_run_then_agents_by_hand_then_collect(tmp_path, small_scenario, capsys):
    """The multi-host recipe: a spec, one command per agent started by hand, a merge (the
    agents are processes; the plan, the merge and the reference run are made in-process)."""
    p2pvar = functools.partial(p2pvar_here, capsys)
    out = tmp_path / "plan"
    scenario = ("--scenario", str(small_scenario))
    proc = p2pvar("deploy", *scenario, "--out", str(out), "--dry-run", "--json")
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["agents"] == 5
    script = out / "deploy" / "commands.sh"
    assert script.read_text().count("abm.cli.commands.agent") == 5
    run = subprocess.run(["sh", str(script)], capture_output=True, timeout=CLI_TIMEOUT_S)
    assert run.returncode == 0, run.stderr
    merged = p2pvar("deploy", "--out", str(out), "--collect", "--json")
    assert merged.returncode == 0, merged.stderr
    assert json.loads(merged.stdout)["complete"] is True
    sim = p2pvar("simulate", *scenario, "--out", str(tmp_path / "sim"), "--no-progress")
    assert sim.returncode == 0, sim.stderr
    for name in ("intervals", "prosumers", "trades", "buses"):
        assert (out / f"{name}.csv").read_text() == (tmp_path / "sim" / f"{name}.csv").read_text()


def test_agent_and_deploy_errors_are_one_line(tmp_path, small_scenario, capsys):
    p2pvar = functools.partial(p2pvar_here, capsys)
    out = tmp_path / "plan"
    proc = p2pvar("deploy", "--out", str(out), "--dry-run", "--json")
    assert proc.returncode == 0, proc.stderr
    spec = json.loads(proc.stdout)["run_spec"]
    assert json.loads(proc.stdout)["agents"] == 33
    wrong_role = p2pvar("agent", "--role", "prosumer", "--id", "dso", "--config", spec)
    assert wrong_role.returncode == 2
    assert wrong_role.stderr.strip() == (
        f"p2pvar: error: id='dso' has role 'dso' in {spec}, not 'prosumer'"
    )
    missing = p2pvar("agent", "--role", "dso", "--id", "dso", "--config", str(tmp_path / "no"))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert "cannot read" in missing.stderr
    bad_hosts = p2pvar("deploy", "--out", str(out), "--hosts", "h.json", "--dry-run")
    assert bad_hosts.returncode == 2
    assert "hosts='h.json' needs transport=tcp" in bad_hosts.stderr
    (tmp_path / "policies.json").write_text('{"p03": "no.such.module:make"}')
    bad_policy = p2pvar(
        "deploy", "--scenario", str(small_scenario), "--out", str(out), "--overwrite",
        "--policies", str(tmp_path / "policies.json"),
    )  # fmt: skip
    assert bad_policy.returncode == 2
    assert bad_policy.stderr.strip() == (
        "p2pvar: error: p03 exited with status 2 before the first interval: policy="
        "'no.such.module:make': cannot import no.such.module: No module named 'no'"
    )


def _child_pids(records_dir) -> list[int]:
    return [
        r["pid"]
        for path in records_dir.glob("*.jsonl")
        for r in read_records(path).records
        if r.get("type") == "start"
    ]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_ctrl_c_stops_every_process(tmp_path, small_scenario):
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "abm.cli.main",
            "deploy",
            "--scenario",
            str(small_scenario),
            "--days",
            "30",
            "--out",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    try:
        deadline = time.monotonic() + CLI_TIMEOUT_S
        dso = out / "agents" / "dso.jsonl"
        while sum(r["type"] == "interval" for r in read_records(dso).records) < 3:
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr
            time.sleep(0.1)
        pids = _child_pids(out / "agents")
        assert len(pids) == 5 and all(_alive(p) for p in pids)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "interrupted" in stderr
    assert not any(_alive(p) for p in pids)


def test_bench_deploy_smoke(tmp_path):
    proc = p2pvar("bench", "deploy", "--prosumers", "3", "--sizes", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    for protocol in ("auction", "bilateral"):
        figures = result[protocol]
        for key in ("interval_ms_ipc", "interval_ms_tcp", "interval_ms_inprocess",
                    "interval_ms_ipc_unbatched", "msgs_per_interval", "bytes_per_interval",
                    "frames_per_interval"):  # fmt: skip
            assert figures[key] > 0, (protocol, key)
        # the orders reach each peer batched (the auction's 2-3 orders always; the bilateral
        # protocol broadcasts only offers, rarely two at once among 3 prosumers)
        frames, unbatched = figures["frames_per_interval"], figures["frames_per_interval_unbatched"]
        assert frames <= unbatched and frames <= figures["deliveries_per_interval"], protocol
    assert result["auction"]["frames_per_interval"] < result["auction"]["deliveries_per_interval"]
    for key in ("interval_ms_ipc", "interval_ms_tcp", "interval_ms_inprocess",
                "msgs_per_interval", "bytes_per_interval"):  # fmt: skip
        assert result[key] == result["auction"][key], key
    sizes = {(r["protocol"], r["prosumers"]) for r in result["scaling"]}
    assert sizes == {("auction", 2), ("auction", 3), ("bilateral", 2), ("bilateral", 3)}
