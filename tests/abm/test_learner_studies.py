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
from abm.inputs.run_inputs import day_set_days
from abm.study.executor import RUN_FILE, RUNS_DIR
from abm.training.train_config import spread_days
from analysis.compare import gap_closed, paired_days, share_of_optimum_savings

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
    per_learner = pd.read_csv(tmp_path / "algorithms.csv").set_index(["algo", "day_set"])
    assert list(per_learner.index) == [  # each learner's day sets side by side
        ("ea-matd3", "validation"),
        ("ea-matd3", "test"),
        ("itd3", "validation"),
        ("itd3", "test"),
    ]
    assert (per_learner["seeds"] == 2).all() and (per_learner["network"] == "ieee33").all()
    assert (per_learner["days"] == 1).all()  # quick: one validation and one test day
    runs = pd.read_csv(tmp_path / "runs.csv")
    references = pd.read_csv(tmp_path / "references.csv", index_col=["network", "day_set"])
    assert len(runs) == 8 and list(references.index) == [
        ("ieee33", "validation"),
        ("ieee33", "test"),
    ]
    assert (references["days"] == 1).all()
    assert (references["optimum_cost_eur"] < references["tou_cost_eur"]).all()
    assert (references["tou_cost_eur"] < references["grid-only_cost_eur"]).all()
    assert (references["mpc_cost_eur"] > references["optimum_cost_eur"]).all()  # no foresight
    np.testing.assert_allclose(
        references["mpc_gap_closed"],
        gap_closed(
            references["tou_cost_eur"], references["mpc_cost_eur"], references["optimum_cost_eur"]
        ),
    )
    for day_set, reference in references.loc["ieee33"].iterrows():  # the days the runs played
        (day,) = spread_days(day_set_days(day_set), 1)
        for label, policy in (("optimum", "optimum"), ("mpc", "mpc"), ("grid-only", "rule")):
            run_dir = tmp_path / RUNS_DIR / f"{label}-d{day:03d}"
            sim = json.loads((run_dir / "config.json").read_text())["config"]
            assert sim["policy"] == policy and sim["days"] == 1 and sim["day_set"] == day_set
            assert day_set_days(day_set)[sim["first_day"]] == day
            summary = json.loads((run_dir / "summary.json").read_text())
            assert reference[f"{label}_cost_eur"] == pytest.approx(summary["prosumer_cost_eur"])
    for _, row in runs.iterrows():  # every row is its run's summary, its shares the owner's
        run_dir = tmp_path / RUNS_DIR / f"{row['algo']}-s{row['seed']}"
        summary = json.loads((run_dir / "summary.json").read_text())
        played = summary[row["day_set"]]
        assert row["cost_eur"] == pytest.approx(played["policy"]["cost_eur"])
        assert row["tou_cost_eur"] == pytest.approx(played["tou"]["cost_eur"])
        assert row["voltage_violations"] == played["policy"]["voltage_violations"]
        reference = references.loc[("ieee33", row["day_set"])]
        assert row["share_of_optimum"] == pytest.approx(
            share_of_optimum_savings(
                reference["grid-only_cost_eur"], row["cost_eur"], reference["optimum_cost_eur"]
            )
        )
        assert row["gap_closed"] == pytest.approx(
            gap_closed(row["tou_cost_eur"], row["cost_eur"], reference["optimum_cost_eur"])
        )
        assert 0 < row["share_of_optimum"] <= 1  # near ToU: between grid-only and the optimum
        record = json.loads((run_dir / RUN_FILE).read_text())
        assert record["spec"]["config"]["seed"] == row["seed"] and record["command_line"]
        assert record["wall_s"] > 0 and record["start_utc"] and record["git_commit"]
        config = json.loads((run_dir / "config.json").read_text())
        assert config["seed"] == row["seed"] and {"torch", "numpy"} <= set(config["versions"])
        assert config["config"]["test_days"] == 1  # the study's runs play the test days
        assert len(pd.read_csv(run_dir / "metrics.csv")) == 2  # the quick budget
    for (algo, day_set), group in runs.groupby(["algo", "day_set"]):
        cost = per_learner.loc[(algo, day_set)]
        assert np.isfinite(group["cost_eur"]).all()
        assert cost["cost_eur_mean"] == pytest.approx(group["cost_eur"].mean())
        assert cost["cost_eur_std"] == pytest.approx(group["cost_eur"].std(ddof=1))
        assert cost["cost_eur_min"] <= cost["cost_eur_mean"] <= cost["cost_eur_max"]
        assert cost["share_of_optimum_mean"] == pytest.approx(group["share_of_optimum"].mean())
        assert cost["gap_closed_mean"] == pytest.approx(group["gap_closed"].mean())
        assert cost["gap_closed_std"] == pytest.approx(group["gap_closed"].std(ddof=1))
        assert cost["voltage_violations_max"] == group["voltage_violations"].max()
        # the paired tests: the day's mean over seeds against ToU's and the MPC reference's
        summaries = [
            json.loads((tmp_path / RUNS_DIR / f"{algo}-s{seed}" / "summary.json").read_text())
            for seed in (0, 1)
        ]
        per_day = np.mean([s[day_set]["policy"]["cost_eur_per_day"] for s in summaries], axis=0)
        tou = np.mean([s[day_set]["tou"]["cost_eur_per_day"] for s in summaries], axis=0)
        mpc = [references.loc[("ieee33", day_set), "mpc_cost_eur"]]  # its one day
        for name, reference_per_day in (("tou", tou), ("mpc", mpc)):
            test = paired_days(per_day, reference_per_day)
            assert cost[f"vs_{name}_eur_per_day"] == pytest.approx(test["diff_eur_per_day"])
            assert cost[f"p_vs_{name}"] == pytest.approx(test["p_wilcoxon"], nan_ok=True)
        assert cost["vs_mpc_eur_per_day"] == pytest.approx(
            cost["cost_eur_mean"] - references.loc[("ieee33", day_set), "mpc_cost_eur"]
        )  # one day: the difference of the totals
    # the gap table: learners and references, the day sets side by side
    gap = pd.read_csv(tmp_path / "gap_closed.csv", index_col=["network", "policy"]).loc["ieee33"]
    assert list(gap.index) == ["ea-matd3", "itd3", "tou", "grid-only", "optimum", "mpc"]
    for day_set in ("validation", "test"):
        reference = references.loc[("ieee33", day_set)]
        for algo in ("ea-matd3", "itd3"):
            learner = per_learner.loc[(algo, day_set)]
            for column in ("gap_closed_mean", "gap_closed_std", "p_vs_tou", "p_vs_mpc"):
                assert gap.loc[algo, f"{day_set}_{column}"] == pytest.approx(
                    learner[column], nan_ok=True
                )
            assert gap.loc[algo, f"{day_set}_cost_eur_per_day_mean"] == pytest.approx(
                learner["cost_eur_mean"]  # one day
            )
        closed = gap[f"{day_set}_gap_closed_mean"]
        assert closed["tou"] == 0 and closed["optimum"] == 1
        assert closed["mpc"] == pytest.approx(reference["mpc_gap_closed"])
        assert gap.loc["mpc", f"{day_set}_cost_eur_per_day_mean"] == reference["mpc_cost_eur"]
        mpc_vs_tou = paired_days([reference["mpc_cost_eur"]], [reference["tou_cost_eur"]])
        assert gap.loc["mpc", f"{day_set}_p_vs_tou"] == pytest.approx(mpc_vs_tou["p_wilcoxon"])
    assert per_learner["diversity_mean"].notna().tolist() == [True, True, False, False]
    assert "| ea-matd3 | validation |" in (tmp_path / "algorithms.md").read_text()
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
    assert "0 runs done, 10 finished earlier, 0 failed" in capsys.readouterr().err
    assert marker.stat().st_mtime_ns == before
    assert pd.read_csv(tmp_path / "algorithms.csv", index_col=["algo", "day_set"]).equals(
        per_learner
    )


def test_scalability_quick(tmp_path: Path) -> None:
    args = ["study", "scalability", "--quick", "--algos", "ea-matd3", "--seeds", "0"]
    assert main([*args, "--out", str(tmp_path), *EXECUTOR]) == 0
    table = pd.read_csv(tmp_path / "scalability.csv").set_index(["network", "day_set"])
    day_sets = ("validation", "test")
    assert list(table.index) == [(n, d) for n in ("ieee33", "swiss161") for d in day_sets]
    assert (table["algo"] == "ea-matd3").all()
    assert table["n_prosumers"].to_dict() == {
        (network, day_set): n
        for network, n in (("ieee33", 32), ("swiss161", 78))  # all of them
        for day_set in day_sets
    }
    for column in ("messages_per_interval", "deliveries_per_interval", "bytes_per_interval"):
        for day_set in day_sets:
            larger, smaller = table.loc[("swiss161", day_set)], table.loc[("ieee33", day_set)]
            assert larger[column] > smaller[column] > 0
    # the message volume is the optimum reference run's market counters, per interval
    for day_set, day in (("validation", 2), ("test", 4)):
        run_dir = tmp_path / RUNS_DIR / f"swiss161-optimum-d{day:03d}"
        messages = pd.read_csv(run_dir / "messages.csv")
        assert table.loc[("swiss161", day_set), "messages_per_interval"] == pytest.approx(
            messages["messages"].sum() / 24
        )
    columns = ["cost_eur_mean", "gap_closed_mean", "share_of_optimum_mean", "vs_mpc_eur_per_day"]
    assert np.isfinite(table[columns].to_numpy()).all()
    network_names = table.index.get_level_values("network").unique()
    for network in network_names:
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
