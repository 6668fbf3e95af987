"""A training run's bookkeeping: learner settings and the curve summary of ``summary.json``."""

from __future__ import annotations

import pytest

from abm.training.run_summary import curve_summary
from abm.training.train_config import TrainRunConfig
from abm.training.train_run import learner_config
from agents.learning.ea_matd3 import EAMATD3Config
from agents.learning.matd3 import MATD3Config


def test_learner_settings_replace_the_defaults() -> None:
    matd3 = learner_config(TrainRunConfig(algo="matd3", updates_per_rollout=7))
    assert isinstance(matd3, MATD3Config) and matd3.updates_per_rollout == 7
    assert matd3.batch_size == MATD3Config().batch_size
    ea = learner_config(TrainRunConfig(batch_size=32, population=3, worlds=8))
    assert isinstance(ea, EAMATD3Config) and ea.learner.batch_size == 32
    assert ea.evolution.population == 3


def test_curve_summary() -> None:
    rows = [
        {"iteration": 1, "coverage": 0.2, "diversity": 0.1},
        {"iteration": 2, "coverage": 0.4, "val_cost": 10.0, "diversity": 0.3},
        {"iteration": 3, "coverage": 0.6, "val_cost": 8.0, "diversity": 0.2},
        {"iteration": 4, "coverage": 0.8, "val_cost": 9.0, "diversity": 0.4},
    ]
    out = curve_summary(rows)
    assert (out["val_cost_first"], out["val_cost_best"], out["val_cost_last"]) == (10, 8, 9)
    assert out["val_cost_best_iteration"] == 3
    assert out["coverage_mean"] == pytest.approx(0.5)
    assert (out["diversity_mean"], out["diversity_last"]) == (pytest.approx(0.25), 0.4)
    assert "diversity_mean" not in curve_summary(
        [{k: v for k, v in r.items() if k != "diversity"} for r in rows]
    )
