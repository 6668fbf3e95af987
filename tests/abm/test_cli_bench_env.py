"""``p2pvar bench env``: a short run reports every figure."""

from __future__ import annotations

import json

import pytest

from abm.cli.main import main


def test_bench_env_short_run(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bench", "env", "--market", "p2p", "--days", "1", "--seconds", "0.01", "--json"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["env_steps_per_s"] == max(
        result[f"env_steps_per_s_b{b}"] for b in (1, 16, 64, 256)
    )
    assert result["env_steps_per_s_mesa"] > 0 and result["cache_build_s"] > 0
    assert result["speedup_vs_mesa"] == pytest.approx(
        result["env_steps_per_s"] / result["env_steps_per_s_mesa"]
    )


def test_bench_env_refuses_no_days(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "env", "--days", "0"]) == 2
    assert "days must be >= 1, got 0" in capsys.readouterr().err
