"""The study executor: local worker processes and a local Ray instance, one-line failures,
self-describing run folders, and resume (finished runs skipped, changed specs refused)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from abm.config import SimConfig
from abm.errors import ConfigError
from abm.study.executor import (
    RUN_FILE,
    RunSpec,
    StudyError,
    execute,
    prepare_study_dir,
    run_dir_of,
)
from abm.training.train_config import TrainRunConfig

pytestmark = pytest.mark.slow

#: A short, cheap run: ieee33, no market, one day.
SMALL = SimConfig(market="grid-only", days=1)
#: A tiny training run (``p2pvar train``): one iteration of two worlds, one held-out day.
TINY_TRAINING = TrainRunConfig(
    algo="matd3", worlds=2, iterations=1, eval_every=1, checkpoint_every=1, train_days=2,
    val_days=1, checkpoint_buffer=False, seed=3,
)  # fmt: skip


def _specs() -> list[RunSpec]:
    return [
        RunSpec("day0", SMALL, labels={"first_day": 0}),
        RunSpec(
            "day1", SimConfig(market="grid-only", days=1, first_day=1), labels={"first_day": 1}
        ),
        # fails inside the run: the network file does not exist
        RunSpec("broken", SimConfig(market="grid-only", network="/nonexistent/feeder.json")),
    ]


def _check_run_folder(out: Path, spec: RunSpec) -> None:
    run_dir = run_dir_of(out, spec)
    record = json.loads((run_dir / RUN_FILE).read_text())
    assert record["complete"] is True
    assert record["spec"] == spec.to_dict()
    assert record["wall_s"] > 0 and record["start_utc"] and record["command_line"]
    assert record["git_commit"]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["config"]["first_day"] == spec.config.first_day
    assert config["git_commit"] == record["git_commit"]
    assert {"numpy", "pandas", "python"} <= set(config["versions"])
    intervals = pd.read_csv(run_dir / "intervals.csv")
    assert len(intervals) == 24  # one day of hourly intervals


def test_local_workers_run_report_failures_and_resume(tmp_path: Path) -> None:
    specs = _specs()
    first = execute(specs, tmp_path, workers=2, progress=False, command_line=["test"])
    assert set(first.records) == {"day0", "day1"}
    assert list(first.failed) == ["broken"]
    assert "\n" not in first.failed["broken"] and "nonexistent" in first.failed["broken"]
    assert not first.ok
    for spec in specs[:2]:
        _check_run_folder(tmp_path, spec)
    # the two days differ (the runs are really their own)
    a, b = (pd.read_csv(run_dir_of(tmp_path, s) / "prosumers.csv") for s in specs[:2])
    assert not a.equals(b)
    assert not (run_dir_of(tmp_path, specs[2]) / RUN_FILE).exists()

    # started again: the finished runs are skipped, untouched; the failed one is retried
    marker = run_dir_of(tmp_path, specs[0]) / RUN_FILE
    before = marker.stat().st_mtime_ns
    again = execute(specs, tmp_path, workers=1, progress=False)
    assert sorted(again.skipped) == ["day0", "day1"]
    assert again.records == {} and list(again.failed) == ["broken"]
    assert marker.stat().st_mtime_ns == before


def test_an_interrupted_run_is_run_again(tmp_path: Path) -> None:
    spec = RunSpec("only", SMALL)
    run_dir = run_dir_of(tmp_path, spec)
    run_dir.mkdir(parents=True)
    (run_dir / "intervals.csv").write_text("interval\n0\n")  # a half-finished earlier attempt
    outcome = execute([spec], tmp_path, workers=1, progress=False)
    assert list(outcome.records) == ["only"] and outcome.skipped == []
    assert len(pd.read_csv(run_dir / "intervals.csv")) == 24


def test_a_finished_run_with_another_spec_is_refused(tmp_path: Path) -> None:
    execute([RunSpec("only", SMALL)], tmp_path, workers=1, progress=False)
    changed = RunSpec("only", SimConfig(market="grid-only", days=1, seed=7))
    with pytest.raises(StudyError, match="another spec"):
        execute([changed], tmp_path, workers=1, progress=False)


def test_spec_and_executor_validation() -> None:
    with pytest.raises(ConfigError, match="run name"):
        RunSpec("a/b", SMALL)
    with pytest.raises(ConfigError, match="backend"):
        RunSpec("a", SMALL, backend="carrier-pigeon")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="prosumers"):
        RunSpec("a", SMALL, prosumers=0)
    with pytest.raises(ConfigError, match="a training run takes backend=in-process"):
        RunSpec("a", TINY_TRAINING, backend="ipc")
    with pytest.raises(StudyError, match="a training run, not a simulation"):
        RunSpec("a", TINY_TRAINING).sim()
    assert RunSpec("a", SMALL).sim() is SMALL
    with pytest.raises(ConfigError, match="not a run config"):
        RunSpec("a", {"days": 1})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="workers"):
        execute([], Path("."), workers=0, progress=False)
    with pytest.raises(StudyError, match="unique"):
        execute([RunSpec("a", SMALL), RunSpec("a", SMALL)], Path("."), progress=False)


def test_study_folder_resumes_or_refuses(tmp_path: Path) -> None:
    assert prepare_study_dir(tmp_path, "markets", overwrite=False) is False
    assert prepare_study_dir(tmp_path, "markets", overwrite=False) is True
    with pytest.raises(Exception, match="holds the study 'markets'"):
        prepare_study_dir(tmp_path, "envelopes", overwrite=False)
    (tmp_path / "runs" / "x").mkdir(parents=True)
    assert prepare_study_dir(tmp_path, "markets", overwrite=True) is False
    assert not (tmp_path / "runs").exists()
    other = tmp_path / "other"
    (other / "runs").mkdir(parents=True)  # a runs/ folder no study wrote is never cleared
    with pytest.raises(Exception, match="runs/ folder no study wrote"):
        prepare_study_dir(other, "markets", overwrite=False)


def test_ray_local_instance(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    training = RunSpec("train", TINY_TRAINING, labels={"algo": "matd3"})
    specs = [*_specs(), training]
    outcome = execute(specs, tmp_path, workers=2, ray_address="local", progress=False)
    assert not ray.is_initialized()  # the instance the executor started is shut down
    assert set(outcome.records) == {"day0", "day1", "train"} and list(outcome.failed) == ["broken"]
    for spec in specs[:2]:
        _check_run_folder(tmp_path, spec)
    # the training run's folder is p2pvar train's, brought back from the Ray worker
    run_dir = run_dir_of(tmp_path, training)
    assert json.loads((run_dir / RUN_FILE).read_text())["spec"] == training.to_dict()
    assert json.loads((run_dir / "config.json").read_text())["seed"] == 3
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["algo"] == "matd3" and summary["validation"]["policy"]["cost_eur"] > 0
    assert len(pd.read_csv(run_dir / "metrics.csv")) == 1 and any((run_dir / "actors").iterdir())
    # the run happened on a Ray worker, not in this process
    assert json.loads((run_dir_of(tmp_path, specs[0]) / RUN_FILE).read_text())["spec"]
    local = execute(specs[:2], tmp_path, workers=1, progress=False)
    assert sorted(local.skipped) == ["day0", "day1"]
    assert os.environ.get("RAY_ADDRESS") is None
