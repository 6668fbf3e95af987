"""The training runs' bookkeeping: learner settings, curve summaries and the comparison table."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from abm.errors import ConfigError
from abm.training.experiments import main, write_table
from abm.training.run_summary import curve_summary
from abm.training.train_config import AlgoName, TrainRunConfig
from abm.training.train_run import learner_config
from agents.learning.ea_matd3 import EAMATD3Config
from agents.learning.matd3 import MATD3Config


def test_learner_settings_replace_the_defaults() -> None:
    matd3 = learner_config(TrainRunConfig(algo=AlgoName.MATD3), {"lr_actor": 3e-4})
    assert isinstance(matd3, MATD3Config) and matd3.lr_actor == 3e-4
    assert matd3.batch_size == MATD3Config().batch_size
    run = TrainRunConfig(batch_size=32)
    ea = learner_config(run, {"batch_size": 64, "tau": 0.01})
    assert isinstance(ea, EAMATD3Config) and (ea.learner.batch_size, ea.learner.tau) == (64, 0.01)
    plain = learner_config(run)
    assert isinstance(plain, EAMATD3Config) and plain.learner.batch_size == 32
    with pytest.raises(ConfigError, match="learner setting 'lr': not a field of MATD3Config"):
        learner_config(run, {"lr": 1e-3})


def test_curve_summary() -> None:
    rows = [
        {"iteration": 1, "coverage": 0.2, "diversity": 0.1},
        {"iteration": 2, "coverage": 0.4, "eval_cost": 10.0, "diversity": 0.3},
        {"iteration": 3, "coverage": 0.6, "eval_cost": 8.0, "diversity": 0.2},
        {"iteration": 4, "coverage": 0.8, "eval_cost": 9.0, "diversity": 0.4},
    ]
    out = curve_summary(rows)
    assert (out["eval_cost_first"], out["eval_cost_best"], out["eval_cost_last"]) == (10, 8, 9)
    assert out["eval_cost_best_iteration"] == 3
    assert out["coverage_mean"] == pytest.approx(0.5)
    assert (out["diversity_mean"], out["diversity_last"]) == (pytest.approx(0.25), 0.4)
    assert "diversity_mean" not in curve_summary(
        [{k: v for k, v in r.items() if k != "diversity"} for r in rows]
    )


def _summary(algo: str, seed: int, cost: float) -> dict:
    held_out = {"dso_net_eur": 5.0, "voltage_violations": 0}
    return {
        "algo": algo,
        "seed": seed,
        "setup": {"iterations": 3},
        "train_wall_s": 100.0 + seed,
        "policy": {"cost_eur": cost, **held_out},
        "tou": {"cost_eur": 100.0, **held_out},
        "rule": {"cost_eur": 120.0, **held_out},
        "curve": curve_summary([{"iteration": 1, "coverage": 0.5, "eval_cost": cost / 10}]),
    }


def test_comparison_table(tmp_path: Path) -> None:
    for algo, seed, cost in [("matd3", 0, 110.0), ("matd3", 1, 130.0), ("itd3", 0, 90.0)]:
        run = tmp_path / "runs" / f"{algo}-s{seed}"
        run.mkdir(parents=True)
        (run / "summary.json").write_text(json.dumps(_summary(algo, seed, cost)))
    write_table(tmp_path / "runs", tmp_path / "t.csv", tmp_path / "t.md")
    with (tmp_path / "t.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["algo"], r["seed"], float(r["cost_eur"])) for r in rows] == [
        ("itd3", "0", 90.0),
        ("matd3", "0", 110.0),
        ("matd3", "1", 130.0),
    ]
    lines = (tmp_path / "t.md").read_text().splitlines()
    assert len(lines) == 4
    assert lines[3].startswith("| matd3 | 2 | 120.0 ± 14.1 | 110.0 - 130.0 | +20.0 | 100 |")


def test_run_is_p2pvar_train_with_learner_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """``experiments run`` (what ``compare`` starts) trains through ``p2pvar train``'s run,
    with the extra MATD3 settings, and its summary feeds the table."""
    monkeypatch.setenv("P2PVAR_CACHE", str(tmp_path / "cache"))
    tiny = (
        "--algo", "matd3", "--worlds", "2", "--train-days", "2", "--eval-days", "1",
        "--iterations", "2", "--updates-per-rollout", "2", "--learning-starts", "24",
        "--batch-size", "16",
    )  # fmt: skip
    out = tmp_path / "runs" / "matd3-s0"
    main(["run", *tiny, "--learner", '{"lr_actor": 0.0003}', "--out", str(out)])
    printed = json.loads(capsys.readouterr().out)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["learner"]["lr_actor"] == 0.0003 and summary["setup"]["worlds"] == 2
    assert printed["held_out_cost_eur"] == summary["policy"]["cost_eur"]
    config = json.loads((out / "config.json").read_text())
    assert config["learner"]["lr_actor"] == 0.0003 and config["command"] == "train"
    csv_path, md_path = str(tmp_path / "t.csv"), str(tmp_path / "t.md")
    main(["table", str(tmp_path / "runs"), "--csv", csv_path, "--md", md_path])
    with (tmp_path / "t.csv").open() as f:
        (row,) = list(csv.DictReader(f))
    assert (row["algo"], row["iterations"]) == ("matd3", "2")
    assert float(row["cost_eur"]) == summary["policy"]["cost_eur"]
