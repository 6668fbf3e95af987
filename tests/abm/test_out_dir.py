"""The ``--out`` guard of simulate, study and deploy; one-line errors; Ctrl-C keeps results.

The CLI runs in this process (:func:`p2pvar_here`) except where a signal is the subject."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pandas as pd
import pytest

from abm.config import Market
from abm.output.out_dir import OutputDirError, prepare_out_dir, survey
from tests.helpers import default_sigint, p2pvar_here

P2PVAR = [sys.executable, "-m", "abm.cli.main"]


def _one_line_error(proc: subprocess.CompletedProcess, *parts: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for part in parts:
        assert part in lines[0], lines[0]


def _earlier_run(folder: Path) -> None:
    (folder / "agents").mkdir(parents=True)
    (folder / "agents" / "p01.jsonl").write_text("{}\n")
    for name in ("config.json", "status.json", "intervals.csv", "timing.csv"):
        (folder / name).write_text("x")


def test_guard_refuses_what_would_mix_or_clobber(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for out, why in (
        (a_file, "is a file"),
        (a_file / "sub", "is a file, not a folder"),
        (Path("/proc/p2pvar-out"), "cannot write there"),
    ):
        with pytest.raises(OutputDirError, match=why):
            prepare_out_dir(out, overwrite=True)
    run = tmp_path / "run"
    _earlier_run(run)
    with pytest.raises(OutputDirError, match=r"holds an earlier run's results.*--overwrite"):
        prepare_out_dir(run, overwrite=False)
    (run / "notes.txt").write_text("mine")
    with pytest.raises(OutputDirError, match=r"files p2pvar did not write \(notes.txt\)"):
        prepare_out_dir(run, overwrite=True)
    assert (run / "config.json").exists()  # nothing deleted when refused
    (run / "notes.txt").unlink()
    prepare_out_dir(run, overwrite=True)
    assert list(run.iterdir()) == []
    fresh = tmp_path / "new" / "deeper"
    assert prepare_out_dir(fresh, overwrite=False).is_dir()
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    prepare_out_dir(other, overwrite=False)  # unrelated files only: results go beside them
    study = tmp_path / "study"
    _earlier_run(study / "multi")
    assert [p.name for p in survey(study, tuple(Market))[0]] == ["multi"]


def test_cli_refuses_bad_out_before_the_run_and_overwrite_replaces(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _run = partial(p2pvar_here, capsys)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    _one_line_error(_run("simulate", "--out", str(a_file)), "is a file")
    _one_line_error(_run("deploy", "--out", str(a_file / "x")), "is a file, not a folder")
    _one_line_error(_run("study", "markets", "--out", "/proc/p2pvar-x"), "cannot write there")
    out = tmp_path / "run"
    _earlier_run(out)  # an old deploy: its timing.csv and agents/ must not survive
    _one_line_error(_run("simulate", "--days", "1", "--out", str(out)), "--overwrite")
    proc = _run("simulate", "--days", "1", "--out", str(out), "--overwrite", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert not (out / "timing.csv").exists() and not (out / "agents").exists()
    status = json.loads((out / "status.json").read_text())
    assert status["complete"] and status["last_completed_interval"] == 23


def test_deploy_bad_inputs_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _run = partial(p2pvar_here, capsys)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    proc = _run(
        "deploy",
        "--transport",
        "tcp",
        "--keys",
        str(a_file),
        "--out",
        str(tmp_path / "k"),
        "--dry-run",
    )
    _one_line_error(proc, "keys", "cannot make a key store")
    out = tmp_path / "dry"
    assert _run("deploy", "--out", str(out), "--dry-run").returncode == 0
    spec = json.loads((out / "deploy" / "run.json").read_text())
    spec["records_dir"] = str(a_file)
    bad_spec = tmp_path / "bad.json"
    bad_spec.write_text(json.dumps(spec))
    proc = _run("agent", "--role", "prosumer", "--id", "p01", "--config", str(bad_spec))
    _one_line_error(proc, "records_dir", "cannot write records")
    (out / "agents" / "dso.jsonl").write_text('{"type":"interval","interval":0}\n')
    _one_line_error(_run("deploy", "--out", str(out), "--collect"), "missing a field", "'present'")
    _one_line_error(_run("grid", "--network", str(tmp_path / "net.json")), "file not found")


def _wait_for_progress(proc: subprocess.Popen, intervals: int, timeout_s: float) -> None:
    """Read the progress bar on stderr until ``intervals`` intervals are done."""
    seen, deadline = b"", time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        seen += os.read(proc.stderr.fileno(), 4096)
        done = [int(n) for n in re.findall(rb"(\d+)/72", seen)]
        if done and max(done) >= intervals:
            return
    raise AssertionError(f"no progress to {intervals} intervals in {timeout_s} s")


@pytest.mark.slow  # a multi-day run in a subprocess
def test_ctrl_c_keeps_the_completed_intervals(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [*P2PVAR, "simulate", "--days", "3", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=default_sigint,
    )  # fmt: skip
    try:
        _wait_for_progress(proc, 3, timeout_s=120)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130 and err.decode().strip().endswith("p2pvar: interrupted")
    status = json.loads((out / "status.json").read_text())
    last = status["last_completed_interval"]
    assert not status["complete"] and status["stopped_by"].startswith("interrupted")
    assert 2 <= last < 71
    intervals = pd.read_csv(out / "intervals.csv")
    assert intervals["interval"].tolist() == list(range(last + 1))
    assert pd.read_csv(out / "prosumers.csv")["interval"].max() == last


def test_a_training_runs_files_are_known(tmp_path: Path) -> None:
    run = tmp_path / "train"
    (run / "actors").mkdir(parents=True)
    (run / "actors" / "p01.npz").write_bytes(b"x")
    (run / "tensorboard").mkdir()
    (run / "tensorboard" / "events.out.tfevents.1764639000.host.123.0").write_bytes(b"x")
    for name in ("config.json", "metrics.csv", "checkpoint.pt"):
        (run / name).write_text("x")
    ours, unknown = survey(run)
    assert len(ours) == 5 and unknown == []
    (run / "tensorboard" / "notes.txt").write_text("mine")
    strangers = r"did not write \(tensorboard, tensorboard/notes.txt\)"
    with pytest.raises(OutputDirError, match=strangers):
        prepare_out_dir(run, overwrite=True)
    (run / "tensorboard" / "notes.txt").unlink()
    prepare_out_dir(run, overwrite=True)
    assert list(run.iterdir()) == []
