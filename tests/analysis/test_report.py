"""``p2pvar report``: the HTML holds every figure (embedded PNG) and table it must, the CSVs
are written next to it, and bad input is refused in one line."""

import base64
import json
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from abm.cli.main import main
from analysis.compare import COMPARISON_COLUMNS

pytestmark = pytest.mark.slow

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: Figures of each run drawn in the report, and those of the runs together.
RUN_FIGURES = 5
TOGETHER = 2  # comparison bars, daily profiles


class ReportParser(HTMLParser):
    """Collects the images, tables (rows of cells) and headings of the report."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.tables: list[list[list[str]]] = []
        self.headings: list[str] = []
        self._cell: list[str] | None = None
        self._heading: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag in ("h2", "h3"):
            self._heading = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag in ("h2", "h3") and self._heading is not None:
            self.headings.append("".join(self._heading))
            self._heading = None

    def handle_data(self, data):
        for part in (self._cell, self._heading):
            if part is not None:
                part.append(data)


def parse(path: Path) -> ReportParser:
    parser = ReportParser()
    parser.feed(path.read_text())
    return parser


def write_training_logs(folder: Path) -> None:
    for seed in range(2):
        path = folder / "ea-matd3" / f"seed{seed}" / "metrics.csv"
        path.parent.mkdir(parents=True)
        pd.DataFrame(
            {
                "iteration": [1, 2],
                "env_steps": [24, 48],
                "episode_return": [-9.0 - seed, -7.0],
                "val_cost": [None, 7.5 + seed],
            }
        ).to_csv(path, index=False)


def test_report_of_a_study_and_training(tiny_study, tmp_path, capsys):
    training = tmp_path / "training"
    write_training_logs(training)
    out = tmp_path / "report"
    assert main(["report", "--runs", str(tiny_study), str(training), "--out", str(out)]) == 0
    report = out / "report.html"
    assert f"report written to {report}" in capsys.readouterr().out
    html = parse(report)
    runs = sorted(p.name for p in tiny_study.iterdir() if p.is_dir())
    assert runs == ["grid-only", "multi"]
    # every figure is an embedded PNG, also written to figures/
    assert len(html.images) == TOGETHER + 1 + RUN_FIGURES * len(runs)  # + training curves
    for src in html.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_MAGIC)
    assert len(list((out / "figures").glob("*.png"))) == len(html.images)
    assert html.headings == [
        "Runs",
        "Study study",
        "Training",
        "Run study/grid-only",
        "Run study/multi",
    ]
    # the runs table: one row per run, the summaries' figures, also as CSV
    runs_csv = pd.read_csv(out / "tables" / "runs.csv", index_col="run")
    assert list(runs_csv.index) == ["study/grid-only", "study/multi"]
    for label in runs_csv.index:
        summary = json.loads((tiny_study.parent / label / "summary.json").read_text())
        for column in COMPARISON_COLUMNS:
            assert runs_csv.loc[label, column] == pytest.approx(summary[column])
    assert set(runs_csv["market"]) == {"grid-only", "multi"}
    runs_html = html.tables[0]
    assert runs_html[0][:3] == ["", "network", "market"]
    assert [row[0] for row in runs_html[2:]] == ["study/grid-only", "study/multi"]
    # the study's own comparison table, rendered and copied
    comparison = pd.read_csv(out / "tables" / "study_comparison.csv")
    pd.testing.assert_frame_equal(comparison, pd.read_csv(tiny_study / "comparison.csv"))
    assert [row[0] for row in html.tables[1][1:]] == ["grid-only", "multi"]
    # the training table: last values per training run
    training_csv = pd.read_csv(out / "tables" / "training.csv")
    assert list(training_csv["learner"]) == ["training/ea-matd3"] * 2
    assert list(training_csv["training run"]) == [f"training/ea-matd3/seed{k}" for k in (0, 1)]
    assert list(training_csv["val_cost"]) == [7.5, 8.5]
    assert len(html.tables) == 3


def test_report_of_one_run_and_run_figures_limit(tiny_study, tmp_path):
    out = tmp_path / "report"
    argv = ["report", "--runs", str(tiny_study / "multi"), "--out", str(out)]
    assert main([*argv, "--run-figures", "0"]) == 0
    html = parse(out / "report.html")
    assert html.images == [] and html.headings == ["Runs"]
    assert len(pd.read_csv(out / "tables" / "runs.csv")) == 1
    # the folder now holds a report: refused without --overwrite, replaced with it
    assert main(argv) == 2
    assert main([*argv, "--overwrite"]) == 0
    assert len(parse(out / "report.html").images) == RUN_FIGURES


def test_bad_input_is_refused_in_one_line(tiny_study, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = {
        str(tmp_path / "missing"): "no such folder",
        str(empty): "holds no run (a folder with config.json and summary.json)",
        str(tiny_study / "comparison.csv"): "is a file, not a folder",
    }
    for folder, reason in cases.items():
        assert main(["report", "--runs", folder, "--out", str(tmp_path / "r")]) == 2
        err = capsys.readouterr().err
        assert err == f"p2pvar: error: --runs {folder}: {reason}" + (
            " and no training log (metrics.csv)\n" if folder == str(empty) else "\n"
        )
    # an output folder holding a run's results is refused, nothing written there
    run = tiny_study / "multi"
    before = sorted(p.name for p in run.iterdir())
    assert main(["report", "--runs", str(run), "--out", str(run)]) == 2
    assert "holds an earlier run's results" in capsys.readouterr().err
    assert sorted(p.name for p in run.iterdir()) == before
