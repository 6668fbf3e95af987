"""``p2pvar demo``: the main job end to end (the committed checkpoint, rule, optimum; report)."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from abm.cli.commands.demo import CHECKPOINT_DIR, LEARNED, REPORT_FOLDER
from abm.cli.main import main
from abm.study.executor import RUNS_DIR
from tests.helpers import assert_conserved

#: Twelve one-day runs and a report: about a minute.
pytestmark = pytest.mark.slow


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.png = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        src = dict(attrs).get("src") or ""
        if tag == "img" and src.startswith("data:image/png;base64,"):
            self.png += 1


def test_demo_runs_every_mode_with_learned_rule_and_optimum(tmp_path: Path, capsys) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "demo finished in" in printed and "| optimum | multi |" in printed
    table = pd.read_csv(out / "comparison.csv").set_index(["policy", "market"])
    policies = {p for p, _ in table.index}
    assert policies == {LEARNED, "rule", "optimum"}
    learned_config = (out / RUNS_DIR / f"{LEARNED}-multi" / "config.json").read_text()
    assert f"checkpoint:{CHECKPOINT_DIR}" in learned_config
    assert len(table) == 12
    shares = table["share_of_optimum_savings"]
    assert shares.loc["optimum"].drop("grid-only").to_numpy() == pytest.approx(1.0)
    # The optimum is the yardstick: no policy beats it in any mode (settled, real rules).
    for policy in policies:
        assert (
            table.loc[policy, "prosumer_cost_eur"]
            >= table.loc["optimum", "prosumer_cost_eur"] - 1e-6
        ).all()
    for run in (out / RUNS_DIR).iterdir():
        tables = {n: pd.read_csv(run / f"{n}.csv") for n in ("prosumers", "trades", "intervals")}
        assert_conserved(tables)
        assert (tables["intervals"]["n_voltage_violations"] == 0).all()
    parser = _Images()
    parser.feed((out / REPORT_FOLDER / "report.html").read_text())
    assert parser.png >= 5


def test_demo_refuses_a_day_outside_the_test_days(capsys) -> None:
    assert main(["demo", "--day", "73"]) == 2
    assert "--day 73" in capsys.readouterr().err
