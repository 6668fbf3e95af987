"""``p2pvar bench train``: a short run reports every figure (no speed is asserted)."""

from __future__ import annotations

import json

import pytest

from abm.cli.main import main

#: The keys the issue names, besides the baselines they are compared with.
KEYS = (
    "rollout_env_steps_per_s",
    "updates_per_s",
    "speedup_rollout_vs_loop",
    "speedup_update_vs_loop",
)


def test_bench_train_short_run(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bench", "train", "--days", "1", "--teams", "2", "--worlds-per-team", "2"]
    assert main([*args, "--seconds", "0.01", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    for key in KEYS:
        assert result[key] > 0, key
    assert result["worlds"] == 4 and result["n_agents"] == 32 and result["torch_threads"] == 1
    assert result["speedup_rollout_vs_loop"] == pytest.approx(
        result["rollout_env_steps_per_s"] / result["rollout_env_steps_per_s_loop"]
    )
    assert result["speedup_update_vs_loop"] == pytest.approx(
        result["updates_per_s"] / result["updates_per_s_loop"]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--teams", "0"], "teams must be >= 1, got 0"),
        (["--seconds", "0"], "seconds must be > 0"),
        (["--torch-threads", "0"], "torch_threads must be >= 1, got 0"),
    ],
)
def test_bench_train_refuses_bad_values(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["bench", "train", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
