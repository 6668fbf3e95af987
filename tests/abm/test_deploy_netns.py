"""Agents on separate 'hosts': network namespaces made by ``scripts/netns_demo.sh``.

The script runs inside its own unshared mount and network namespace, so it touches nothing
outside; where namespaces are not permitted (no root, no user namespaces) the test is
skipped and the loopback-address test of ``test_deploy_equality.py`` covers the same
configuration.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from abm.config import SimConfig
from abm.sim.simulation import run_simulation

#: Each test starts one OS process per agent (deploy): long.
pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "netns_demo.sh"
RESULT_TABLES = ("intervals", "prosumers", "trades", "buses")
#: Prosumers of the ieee33 scenario deployed (``ieee33_with``): the script puts p01-p16 on
#: h1, the rest on h2.
N_PROSUMERS = 20


def _namespaces_permitted() -> bool:
    command = "unshare --mount --net --propagation private ip link add p2pv-probe type bridge"
    probe = subprocess.run(command.split(), capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _namespaces_permitted(), reason="network namespaces not permitted here")
def test_netns_hosts_match_simulate(tmp_path: Path, ieee33_with: Callable[[int], Path]) -> None:
    out = tmp_path / "netns"
    scenario = str(ieee33_with(N_PROSUMERS))
    proc = subprocess.run(
        [str(SCRIPT), str(out), "--scenario", scenario],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHON": sys.executable},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "p2pv-h0" in proc.stdout and "p2pv-h2" in proc.stdout
    procs = pd.read_csv(out / "processes.csv").set_index("agent")
    assert procs.loc["dso", "host"] == "h0"
    assert procs.loc["p16", "host"] == "h1" and procs.loc["p17", "host"] == "h2"
    run_simulation(SimConfig(scenario=scenario), tmp_path / "sim", progress=False)
    for name in RESULT_TABLES:
        expected = pd.read_csv(tmp_path / "sim" / f"{name}.csv")
        got = pd.read_csv(out / f"{name}.csv")
        pd.testing.assert_frame_equal(got, expected, check_exact=True, obj=name)
