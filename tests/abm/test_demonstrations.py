"""The optimum's demonstrations (``abm/training/demonstrations.py``): what the clone learns from."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from abm.cli.main import main
from abm.envs.train_env import make_env
from abm.errors import ConfigError
from abm.inputs.profiles import FIT_DAYS, TRAIN_DAYS, VALIDATION_DAYS
from abm.training.demonstrations import TARGET_LIMIT, record_demonstrations
from abm.training.train_config import TrainRunConfig
from agents.policy import TRUTHFUL_PRICE


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("P2PVAR_CACHE", str(tmp_path / "cache"))
    yield tmp_path / "cache"


@pytest.mark.slow  # two optimum LPs and a one-day simulation of the optimum
def test_demonstrations_play_the_optimum_as_the_optimum_policy_does(
    tmp_path: Path, cache: Path
) -> None:
    env = make_env(TrainRunConfig(worlds=1, base_policy=""))
    day = FIT_DAYS[40]
    demos = record_demonstrations(env, [day], progress=False)
    n, t = env.n_agents, env.n_intervals
    assert demos.obs.shape == (t * n, env.obs_dim) and demos.actions.shape == (t * n, 4)
    assert np.abs(demos.actions).max() <= TARGET_LIMIT
    assert (demos.actions[:, 1] == TARGET_LIMIT).all()  # the whole position offered...
    assert (demos.actions[:, 2] == max(TRUTHFUL_PRICE, -TARGET_LIMIT)).all()  # ...truthfully
    assert (cache / "demonstrations").is_dir()  # the day's LP is cached
    # the same day as a one-day run of the optimum policy in the agent simulation
    out = tmp_path / "sim"
    args = ["simulate", "--policy", "optimum", "--day-set", "train", "--days", "1"]
    first = ["--first-day", str(TRAIN_DAYS.index(day)), "--no-progress", "--out", str(out)]
    assert main([*args, *first]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert demos.cost_eur_per_day[0] == pytest.approx(summary["prosumer_cost_eur"], rel=1e-6)


def test_only_fit_days_and_plain_actors_are_demonstrated() -> None:
    env = make_env(TrainRunConfig(worlds=1, base_policy=""))
    with pytest.raises(ConfigError, match="is not a fit day"):
        record_demonstrations(env, [VALIDATION_DAYS[0]], progress=False)
    residual = make_env(TrainRunConfig(worlds=1))
    with pytest.raises(ConfigError, match="for plain actors"):
        record_demonstrations(residual, [FIT_DAYS[0]], progress=False)
    with pytest.raises(ConfigError, match="init='clone' clones plain actors"):
        TrainRunConfig(init="clone", base_policy="tou")


@pytest.mark.slow  # two optimum LPs, a clone and a one-iteration run
def test_a_clone_run_exports_the_best_on_validation_the_clone_included(tmp_path: Path) -> None:
    from abm.training.train_run import train_run

    config = TrainRunConfig(
        algo="matd3", init="clone", base_policy="", worlds=2, iterations=1, eval_every=1,
        train_days=2, val_days=1, updates_per_rollout=1, learning_starts=24, batch_size=8,
        checkpoint_buffer=False,
    )  # fmt: skip
    train_run(config, tmp_path / "run", progress=False)
    clone = json.loads((tmp_path / "run" / "clone.json").read_text())
    assert clone["demonstrated_days"] == 2 and clone["pairs"] == 2 * 24 * 32
    assert 1 <= clone["epoch_kept"] <= len(clone["val_cost_per_epoch"])
    metrics = pd.read_csv(tmp_path / "run" / "metrics.csv")
    best = min(min(clone["val_cost_per_epoch"]), metrics["val_cost"].min())
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["validation"]["policy"]["cost_eur"] == pytest.approx(best, rel=1e-6)
