"""CLI of the messaging layer: ``p2pvar keys init`` and ``p2pvar bench messaging``.

The parser is built with only these commands registered, so the tests do not depend on
other subcommands' modules.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from abm.cli import main as cli
from abm.cli.commands import bench
from messaging.security import KeyStore

BENCH_KEYS = (
    "rtt_us_inproc",
    "rtt_us_ipc",
    "rtt_us_tcp",
    "baseline_rtt_us_ipc",
    "baseline_rtt_us_tcp",
    "overhead_ratio_ipc",
    "stream_msgs_per_s_ipc",
    "direct_rtt_us_ipc",
    "fanin_msgs_per_s",
    "baseline_fanin_msgs_per_s",
    "inmem_us_per_msg",
)


@pytest.fixture(autouse=True)
def only_messaging_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("keys", "bench"))
    monkeypatch.setattr(bench, "BENCH_MODULES", ("messaging",))


def test_keys_init_creates_and_keeps(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / "keys"
    assert cli.main(["keys", "init", str(root), "--agents", "p01", "dso", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["created"] == ["relay", "p01", "dso"]
    assert KeyStore(root).agent_ids() == ("dso", "p01")
    assert cli.main(["keys", "init", str(root), "--agents", "p01"]) == 0
    out = capsys.readouterr().out
    assert "kept" in out and "['relay', 'p01']" in out


def test_keys_init_bad_id_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["keys", "init", str(tmp_path), "--agents", "bad id"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("p2pvar: error: agent id 'bad id'") and err.count("\n") == 1


def test_bench_messaging_tiny_budget_json(capsys: pytest.CaptureFixture) -> None:
    argv = ["bench", "messaging", "--round-trips", "20", "--stream-msgs", "50"]
    argv += ["--fanin-procs", "2", "--fanin-msgs", "20", "--json"]
    assert cli.main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    for key in BENCH_KEYS:
        assert result[key] > 0, key
    assert result["overhead_target_met_ipc"] == (result["overhead_ratio_ipc"] <= 1.3)


def test_bench_messaging_rejects_empty_budget(capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["bench", "messaging", "--round-trips", "0"]) == 2
    assert "--round-trips=0" in capsys.readouterr().err
