"""``study algorithms`` and ``study scalability`` at their quick size: training runs through
the executor, their tables (contents), the training-curve figure, resume, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from abm.cli.main import main
from abm.study.executor import RUN_FILE, RUNS_DIR
from analysis.compare import share_of_optimum_savings

pytestmark = pytest.mark.slow

EXECUTOR = ["--workers", "1", "--no-progress"]


@pytest.fixture
def kept_figures(monkeypatch: pytest.MonkeyPatch):
    """Saved figures stay open (``plt.close`` does nothing); all are closed at the end."""
    monkeypatch.setattr(plt, "close", lambda *_: None)
    yield
    monkeypatch.undo()
    plt.close("all")


def test_algorithms_quick(tmp_path: Path, kept_figures, capsys: pytest.CaptureFixture) -> None:
    args = ["study", "algorithms", "--quick", "--algos", "ea-matd3,itd3", "--seeds", "0,1"]
    assert main([*args, "--out", str(tmp_path), *EXECUTOR]) == 0
    per_learner = pd.read_csv(tmp_path / "algorithms.csv").set_index("algo")
    assert list(per_learner.index) == ["ea-matd3", "itd3"]
    assert (per_learner["seeds"] == 2).all() and (per_learner["network"] == "ieee33").all()
    runs = pd.read_csv(tmp_path / "runs.csv")
    references = pd.read_csv(tmp_path / "references.csv", index_col="network").loc["ieee33"]
    assert len(runs) == 4 and references["days"] == 1  # quick: one validation day
    assert references["optimum_cost_eur"] < references["tou_cost_eur"]
    assert references["tou_cost_eur"] < references["grid-only_cost_eur"]
    for _, row in runs.iterrows():  # every row is its run's summary, its share the owner's
        run_dir = tmp_path / RUNS_DIR / f"{row['algo']}-s{row['seed']}"
        summary = json.loads((run_dir / "summary.json").read_text())
        assert row["cost_eur"] == pytest.approx(summary["validation"]["policy"]["cost_eur"])
        assert row["share_of_optimum"] == pytest.approx(
            share_of_optimum_savings(
                references["grid-only_cost_eur"], row["cost_eur"], references["optimum_cost_eur"]
            )
        )
        assert 0 < row["share_of_optimum"] <= 1  # near ToU: between grid-only and the optimum
        record = json.loads((run_dir / RUN_FILE).read_text())
        assert record["spec"]["config"]["seed"] == row["seed"] and record["command_line"]
        assert record["wall_s"] > 0 and record["start_utc"] and record["git_commit"]
        config = json.loads((run_dir / "config.json").read_text())
        assert config["seed"] == row["seed"] and {"torch", "numpy"} <= set(config["versions"])
        assert len(pd.read_csv(run_dir / "metrics.csv")) == 2  # the quick budget
    for algo, group in runs.groupby("algo"):
        cost = per_learner.loc[algo]
        assert np.isfinite(group["cost_eur"]).all()
        assert cost["cost_eur_mean"] == pytest.approx(group["cost_eur"].mean())
        assert cost["cost_eur_std"] == pytest.approx(group["cost_eur"].std(ddof=1))
        assert cost["cost_eur_min"] <= cost["cost_eur_mean"] <= cost["cost_eur_max"]
        assert cost["share_of_optimum_mean"] == pytest.approx(group["share_of_optimum"].mean())
    assert per_learner["diversity_mean"].notna().tolist() == [True, False]  # EA-MATD3 only
    assert "| ea-matd3 |" in (tmp_path / "algorithms.md").read_text()
    # the training curves: per panel one mean line and one band per learner
    assert (tmp_path / "training_curves.png").stat().st_size > 0
    axes = plt.figure(plt.get_fignums()[-1]).axes
    assert [ax.get_ylabel() for ax in axes][1] == "validation cost per day (EUR)"
    for ax in axes:
        assert len(ax.lines) == 2 and len(ax.collections) == 2
        assert [t.get_text() for t in ax.get_legend().get_texts()] == [
            "ea-matd3 (n=2 seeds)",
            "itd3 (n=2 seeds)",
        ]

    # started again: every run is skipped, untouched, and the tables written again
    marker = tmp_path / RUNS_DIR / "itd3-s1" / RUN_FILE
    before = marker.stat().st_mtime_ns
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path), *EXECUTOR]) == 0
    assert "0 runs done, 6 finished earlier, 0 failed" in capsys.readouterr().err
    assert marker.stat().st_mtime_ns == before
    assert pd.read_csv(tmp_path / "algorithms.csv", index_col="algo").equals(per_learner)


def test_scalability_quick(tmp_path: Path) -> None:
    args = ["study", "scalability", "--quick", "--algos", "ea-matd3", "--seeds", "0"]
    assert main([*args, "--out", str(tmp_path), *EXECUTOR]) == 0
    table = pd.read_csv(tmp_path / "scalability.csv").set_index("network")
    assert list(table.index) == ["ieee33", "swiss161"] and (table["algo"] == "ea-matd3").all()
    assert table["n_prosumers"].to_dict() == {"ieee33": 32, "swiss161": 78}  # all of them
    for column in ("messages_per_interval", "deliveries_per_interval", "bytes_per_interval"):
        assert table.loc["swiss161", column] > table.loc["ieee33", column] > 0
    # the message volume is the optimum reference run's market counters, per interval
    messages = pd.read_csv(tmp_path / RUNS_DIR / "swiss161-optimum-d002" / "messages.csv")
    assert table.loc["swiss161", "messages_per_interval"] == pytest.approx(
        messages["messages"].sum() / 24
    )
    assert np.isfinite(table[["cost_eur_mean", "share_of_optimum_mean"]].to_numpy()).all()
    for network in table.index:
        assert (tmp_path / f"training_curves-{network}.png").stat().st_size > 0


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--algos", "ea-matd3,qlearning", "algos='qlearning' is not one of"),
        ("--seeds", "0,x", "seeds='0,x' must be comma-separated integers >= 0"),
        ("--seeds", "-1", "seeds='-1' must be"),
        ("--worlds", "0", "worlds=0 must be an integer >= 1"),
    ],
)
def test_bad_input_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture, flag: str, value: str, message: str
) -> None:
    out = tmp_path / "study"
    assert main(["study", "algorithms", "--quick", flag, value, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()  # refused before anything is written
