"""``p2pvar grid`` and ``p2pvar bench grid``: in-process and subprocess smoke runs, errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from abm.bench.grid import plain_zbus_fixed_point
from abm.bench.synthetic_cases import random_injections
from abm.cli.main import main
from dso.networks import load_network
from dso.powerflow import RadialPowerFlow
from tests.helpers import p2pvar_here

P2PVAR = [sys.executable, "-m", "abm.cli.main"]
BENCH_KEYS = {
    "pf_us", "runpp_us", "speedup_vs_runpp", "batch_pf_per_s", "doe_ms", "lsf_ms",
    "max_abs_dv_pu", "batch_speedup_vs_plain_numpy", "batch_pf_per_s_plain_numpy",
}  # fmt: skip


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*P2PVAR, *args], capture_output=True, text=True, timeout=300)


def test_grid_json_gives_the_ieee33_anchors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["grid", "--network", "ieee33", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_buses"] == 33 and summary["n_lines"] == 32
    assert summary["loss_kw"] == pytest.approx(202.68, abs=0.01)
    assert summary["vmin_pu"] == pytest.approx(0.9131, abs=1e-4) and summary["vmin_bus"] == 17
    assert summary["vmax_pu"] == 1.0


@pytest.mark.slow  # a fresh interpreter in a subprocess
def test_grid_table_for_swiss161_in_a_subprocess() -> None:
    proc = _run("grid", "--network", "swiss161")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("swiss161: base case")
    assert "n_buses              162" in proc.stdout and "substation_branches  2" in proc.stdout


def test_unknown_network_is_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    proc = p2pvar_here(capsys, "grid", "--network", "ieee34")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert proc.stderr.startswith("p2pvar: error: unknown network 'ieee34'")


def test_bench_grid_tiny_budget(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bench", "grid", "--network", "ieee33", "--batch", "64", "--repeats", "1", "--json"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) >= BENCH_KEYS
    assert result["speedup_vs_runpp"] > 1 and result["max_abs_dv_pu"] < 1e-6


def test_bench_grid_refuses_a_bad_batch(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "grid", "--batch", "0"]) == 2
    assert "batch must be >= 1, got 0" in capsys.readouterr().err


@pytest.mark.parametrize("network", ["ieee33", "swiss161"])
def test_plain_baseline_solves_the_same_fixed_point(network: str) -> None:
    """The benchmark's plain numpy iteration does the solver's work: it reaches its voltages."""
    pf = RadialPowerFlow(load_network(network))
    p, q = random_injections(pf.feeder, 40, np.random.default_rng(12))
    s_ns = pf.injections_pu(p, q)[0][:, pf.non_slack]
    plain = plain_zbus_fixed_point(pf.z, pf.v_nl, s_ns, pf.tol_pu, pf.max_iter)
    np.testing.assert_allclose(plain, pf.solve(p, q).v_pu[:, pf.non_slack], rtol=0, atol=1e-9)
