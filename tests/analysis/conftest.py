"""Tiny real runs shared by the figure and report tests: one day of ieee33, grid-only and
multi, in a study-like folder with its comparison table."""

from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from abm.config import Market, SimConfig
from abm.sim.simulation import run_simulation
from analysis.compare import compare_runs

MODES = (Market.GRID_ONLY, Market.MULTI)


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``study/<mode>/`` run folders of one ieee33 day and ``study/comparison.csv``."""
    study = tmp_path_factory.mktemp("tiny") / "study"
    runs = {}
    for market in MODES:
        run_simulation(
            SimConfig(network="ieee33", market=market, days=1), study / market, progress=False
        )
        runs[str(market)] = study / market
    compare_runs(runs, baseline="grid-only").to_csv(study / "comparison.csv")
    return study


@pytest.fixture
def kept_figures(monkeypatch: pytest.MonkeyPatch):
    """Figures saved during the test stay open (``plt.close`` does nothing) for inspection;
    yields a function returning the last one; all are closed at the end."""
    monkeypatch.setattr(plt, "close", lambda *_: None)
    yield lambda: plt.figure(plt.get_fignums()[-1])
    monkeypatch.undo()
    plt.close("all")
