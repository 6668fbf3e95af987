"""A learner registered in ``agents.learners`` trains through the training loop."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.learners import LEARNERS
from agents.learning.matd3 import MATD3
from agents.learning.train import TrainConfig, make_algorithm, train
from tests.agents.learning.conftest import TINY, toy_env


class _ToyLearner(MATD3):
    """MATD3 under another name (a newcomer's learner, registered by the test)."""

    name = "toy-learner"


def test_a_registered_learner_trains(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(LEARNERS, _ToyLearner.name, _ToyLearner)
    env = toy_env()
    learner = make_algorithm("toy-learner", env, 0, TINY)
    assert isinstance(learner, _ToyLearner)
    config = TrainConfig(iterations=1, eval_every=1, checkpoint_every=1, progress=False)
    rows, _ = train(learner, env, config, tmp_path)
    assert len(rows) == 1 and "val_cost" in rows[0]
    assert len(list((tmp_path / "actors").glob("*.npz"))) == env.n_agents
