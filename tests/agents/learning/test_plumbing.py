"""Stacked networks, replay buffer, coverage measure and the toy environment's contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.interval import EPISODE_INTERVALS
from agents.learning.buffer import Batch, ReplayBuffer
from agents.learning.env_protocol import EnvDims, VecMarketEnv
from agents.learning.errors import LearningConfigError
from agents.learning.matd3 import MATD3Config, make_critics
from agents.learning.networks import StackedMLP, frozen_copy, polyak_update
from agents.learning.rollout import action_coverage, team_actions
from agents.learning.seeding import seeded_generator
from tests.support.toy_env import ToyTeamEnv


def test_stacked_mlp_equals_one_network_per_agent() -> None:
    net = StackedMLP((3, 5), (7, 16, 4), tanh_output=True, generator=seeded_generator(0))
    x = torch.randn(3, 5, 11, 7)
    y = net(x)
    for p in range(3):
        for i in range(5):
            h = torch.relu(x[p, i] @ net.weights[0][p, i] + net.biases[0][p, i])
            ref = torch.tanh(h @ net.weights[1][p, i] + net.biases[1][p, i])
            torch.testing.assert_close(y[p, i], ref)


def test_team_actions_give_each_team_its_block_of_worlds() -> None:
    net = StackedMLP((2, 3), (4, 8, 4), tanh_output=True, generator=seeded_generator(1))
    team = [t.detach() for t in net.params()]
    obs = torch.randn(6, 3, 4)  # 2 teams x 3 worlds
    actions = team_actions(team, obs)
    for t in range(2):
        one = [p[t : t + 1] for p in team]
        torch.testing.assert_close(
            actions[3 * t : 3 * t + 3], team_actions(one, obs[3 * t : 3 * t + 3])
        )


def test_polyak_update_moves_targets_by_tau() -> None:
    net = StackedMLP((2,), (3, 4), tanh_output=False, generator=seeded_generator(2))
    target = frozen_copy(net)
    with torch.no_grad():
        net.weights[0].add_(1.0)
    old = target.weights[0].clone()
    polyak_update(target, net, 0.25)
    torch.testing.assert_close(target.weights[0], old + 0.25)
    assert not target.weights[0].requires_grad


def _batch(b: int, value: float) -> Batch:
    return Batch(
        obs=torch.full((b, 2, 3), value),
        state=torch.full((b, 5), value),
        actions=torch.full((b, 2, 4), value),
        rewards=torch.full((b, 2), value),
        next_obs=torch.full((b, 2, 3), value),
        next_state=torch.full((b, 5), value),
        done=torch.zeros(b),
    )


def test_replay_buffer_overwrites_the_oldest() -> None:
    buffer = ReplayBuffer(10, n_agents=2, obs_dim=3, state_dim=5, action_dim=4)
    for step in range(4):
        buffer.add(_batch(4, float(step)))
    assert len(buffer) == 10
    sample = buffer.sample(500, seeded_generator(0))
    assert set(sample.rewards[:, 0].tolist()) == {1.0, 2.0, 3.0}  # step 0 overwritten
    restored = ReplayBuffer(10, n_agents=2, obs_dim=3, state_dim=5, action_dim=4)
    restored.load_state_dict(buffer.state_dict())
    again = restored.sample(500, seeded_generator(0))
    assert torch.equal(again.obs, sample.obs)


def test_action_coverage() -> None:
    corners = torch.tensor([[[-1.0, -1.0, -1.0, -1.0]], [[1.0, 1.0, 1.0, 1.0]]])  # [2, 1, 4]
    assert action_coverage(corners) == 2 / 4**4
    uniform = torch.rand(20_000, 2, 4, generator=seeded_generator(0)) * 2 - 1
    assert action_coverage(uniform) == 1.0


def test_toy_env_honours_the_contract() -> None:
    env: VecMarketEnv = ToyTeamEnv(4, 3)
    obs, state = env.reset(7)
    assert obs.shape == (4, 3, env.obs_dim) and state.shape == (4, env.state_dim)
    steps = 0
    done = np.zeros(4, dtype=bool)
    while not done.all():
        obs, state, rewards, done, _ = env.step(np.zeros((4, 3, 4)))
        assert rewards.shape == (4, 3) and (rewards <= 0).all()
        steps += 1
    assert steps == EPISODE_INTERVALS
    again, _ = env.reset(7)
    first, _ = ToyTeamEnv(4, 3).reset(7)
    assert np.array_equal(again, first)


def test_toy_env_best_team_return_is_zero() -> None:
    env = ToyTeamEnv(2, 3)
    env.reset(0, days=[1, 2])
    z = env._z
    own = np.tanh(np.einsum("bc,nck->bnk", z, env._w) + env._day_feature[[1, 2]][:, None, None])
    best = np.concatenate([np.broadcast_to(0.5 * z[:, :1, None], (2, 3, 1)), own], axis=-1)
    _, _, rewards, _, _ = env.step(best)
    assert np.allclose(rewards, 0.0)
    with pytest.raises(LearningConfigError, match="actions shape"):
        env.step(np.zeros((2, 3, 3)))


@pytest.mark.parametrize("design", ["trunk", "separate", "local"])
def test_critic_with_own_action_replaced_equals_full_evaluation(design: str) -> None:
    dims = EnvDims(n_agents=4, obs_dim=5, state_dim=7, action_dim=4)
    gen = seeded_generator(0)
    config = MATD3Config(
        critic_trunk=16 if design == "trunk" else 0,
        critic_hidden=(8,),
        centralised=design != "local",
    )
    critics = make_critics(dims, config, gen)
    state, obs = torch.randn(6, 7, generator=gen), torch.randn(6, 4, 5, generator=gen)
    actions = torch.rand(6, 4, 4, generator=gen) * 2 - 1
    own = torch.rand(6, 4, 4, generator=gen) * 2 - 1
    q1 = critics.q1_own_action(state, obs, actions, own)
    for i in range(4):
        joint = actions.clone()
        joint[:, i] = own[:, i]
        torch.testing.assert_close(q1[i], critics.q_values(state, obs, joint)[0, i])
    assert critics.q_values(state, obs, actions).shape == (2, 4, 6)
