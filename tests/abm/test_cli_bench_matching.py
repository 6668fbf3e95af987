"""``p2pvar bench matching``: a small run whose batched and scalar trades agree."""

from __future__ import annotations

import json

import pytest

from abm.cli.main import main


def test_bench_matching_small_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "matching", "--prosumers", "6", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["identical"] is True and result["trades_per_book"] > 0
    assert {"books_per_s_scalar", "books_per_s_batch_256", "speedup_vs_scalar"} <= set(result)


def test_bench_matching_refuses_no_prosumers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "matching", "--prosumers", "0"]) == 2
    assert "prosumers must be >= 1, got 0" in capsys.readouterr().err
