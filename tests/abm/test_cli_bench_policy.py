"""``p2pvar bench forecast`` and ``bench policy``: short runs report every figure."""

from __future__ import annotations

import json

import pytest

from abm.cli.main import main
from agents.forecast import FORECASTERS


def test_bench_forecast_short_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "forecast", "--days", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["days"] == 2
    for name in FORECASTERS:
        for what in ("load", "pv"):
            assert result[f"{name}_{what}_mae_kw"] > 0
            assert result[f"{name}_{what}_noon_mae_kw"] >= abs(
                result[f"{name}_{what}_noon_bias_kw"]
            )
        assert 0 < result[f"{name}_ms_per_prosumer_interval"] < 1.0  # well under 1 ms


@pytest.mark.slow  # two simulated ieee33 days (about 10 s on a quiet machine)
def test_bench_policy_one_day(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "policy", "--days", "1", "--policies", "tou,mpc", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["tou_ratio_vs_tou"] == 1.0
    assert result["mpc_ratio_vs_tou"] == pytest.approx(result["mpc_wall_s"] / result["tou_wall_s"])
    assert result["mpc_act_ms_p50"] > result["tou_act_ms_p50"] > 0
    assert result["mpc_policy_fallbacks"] == 0 and result["mpc_voltage_violations"] == 0


def test_bench_policy_needs_a_baseline_and_a_policy(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "policy", "--policies", "tou"]) == 2
    assert "name a baseline and one more policy" in capsys.readouterr().err
    assert main(["bench", "policy", "--policies", "tou,mpc:oracle"]) == 2
    assert "forecaster = 'oracle': unknown" in capsys.readouterr().err
