"""Behaviour cloning (``agents/learning/imitation.py``) and starting learners from a clone."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from agents.learners import LEARNERS
from agents.learning.errors import LearningConfigError
from agents.learning.imitation import CloneConfig, clone_actor, team_of
from agents.learning.networks import stacked_forward
from agents.learning.seeding import seeded_generator
from agents.learning.train import make_algorithm
from tests.agents.learning.conftest import tiny_config, toy_env


def _act(actor: list[torch.Tensor], obs: np.ndarray) -> np.ndarray:
    team = team_of(actor, (1,))
    x = torch.as_tensor(obs, dtype=torch.float32)[None]
    return stacked_forward(team[0::2], team[1::2], x, tanh_output=True)[0].numpy()


def _demonstrations(m: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """A smooth target on inputs of very different scales (kW next to fractions)."""
    rng = np.random.default_rng(0)
    obs = np.column_stack([rng.uniform(0, 300, m), rng.uniform(-1, 1, m), rng.normal(5, 0.01, m)])
    actions = np.column_stack(
        [np.tanh(obs[:, 0] / 100 - 1.5), 0.8 * obs[:, 1], -0.5 * np.ones(m), obs[:, 1] ** 2 - 0.5]
    )
    return obs.astype(np.float32), actions.astype(np.float32)


def test_the_clone_fits_and_the_kept_epoch_has_the_lowest_score() -> None:
    obs, actions = _demonstrations()
    scores: list[float] = []

    def score(actor: list[torch.Tensor]) -> float:  # the fit's error on held-out pairs
        err = float(np.mean((_act(actor, obs[-500:]) - actions[-500:]) ** 2))
        scores.append(err)
        return err

    clone = clone_actor(
        obs[:-500],
        actions[:-500],
        (32, 32),
        CloneConfig(epochs=6, batch_size=32),
        seeded_generator(0),
        score,
    )
    assert clone.scores == scores and len(scores) == 6
    assert clone.epoch == 1 + int(np.argmin(scores))
    assert clone.losses[-1] < clone.losses[0] / 3  # it learns
    # the standardisation is folded into layer 0: the raw observations give the kept fit
    kept = float(np.mean((_act(clone.actor, obs[-500:]) - actions[-500:]) ** 2))
    assert kept == pytest.approx(min(scores), rel=1e-5) and kept < 0.01


def test_bad_demonstrations_are_refused_in_one_line() -> None:
    obs, actions = _demonstrations(10)
    obs[3, 1] = np.nan
    with pytest.raises(LearningConfigError, match="not a finite number"):
        clone_actor(obs, actions, (8,), CloneConfig(epochs=1), seeded_generator(0), lambda a: 0.0)
    with pytest.raises(LearningConfigError, match=r"must be \(M, obs_dim\)"):
        clone_actor(obs[:5], actions, (8,), CloneConfig(), seeded_generator(0), lambda a: 0.0)
    with pytest.raises(LearningConfigError, match="clone epochs = 0"):
        CloneConfig(epochs=0)


@pytest.mark.parametrize("algo", list(LEARNERS))
def test_every_learner_starts_from_the_clone(algo: str) -> None:
    env = toy_env()
    learner = make_algorithm(algo, env, 0, tiny_config(algo))
    sizes = (env.obs_dim, *learner.actor_hidden, env.action_dim)
    g = seeded_generator(1)
    actor = []
    for n_in, n_out in itertools.pairwise(sizes):
        actor += [torch.randn(n_in, n_out, generator=g), torch.randn(n_out, generator=g)]
    learner.start_from(actor)
    for got, want in zip(learner.policy_team(), actor, strict=True):
        assert got.shape == (1, env.n_agents, *want.shape)
        assert torch.equal(got, want.expand_as(got))  # every prosumer a copy
    if algo == "ea-matd3":  # every team of the population too
        for got, want in zip(learner.population, actor, strict=True):  # type: ignore[attr-defined]
            assert torch.equal(got, want.expand_as(got))
