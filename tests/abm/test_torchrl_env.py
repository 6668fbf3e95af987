"""The TorchRL environment over MarketVecEnv (the ``torchrl`` extra): its specs, that it
plays exactly MarketVecEnv's market, collectors and ParallelEnv over it, and the export of
a BenchMARL policy as actor files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchrl.collectors import Collector
from torchrl.envs import ParallelEnv
from torchrl.envs.utils import check_env_specs

from abm.config import SimConfig
from abm.envs.torchrl_env import GROUP, MarketTorchEnv
from abm.envs.vec_env import MarketVecEnv
from abm.errors import ConfigError
from agents.interval import EPISODE_INTERVALS
from agents.policy import OBS_DIM

CONFIG = SimConfig(network="ieee33", market="multi")
DAYS = [9, 184]  # held-out calendar days, one per world


@pytest.fixture(scope="module")
def vec() -> MarketVecEnv:
    return MarketVecEnv(len(DAYS), CONFIG, base_policy="tou", residual_scale=0.1)


def test_specs_pass_torchrls_check(vec: MarketVecEnv) -> None:
    env = MarketTorchEnv(vec, seed=3)
    check_env_specs(env)
    obs = env.full_observation_spec[GROUP, "observation"]
    assert obs.shape == (len(DAYS), vec.n_agents, vec.obs_dim)
    assert env.full_observation_spec["state"].shape == (len(DAYS), vec.state_dim)
    assert env.full_action_spec[GROUP, "action"].shape == (len(DAYS), vec.n_agents, 4)
    assert set(env.done_keys) == {"done", "terminated", "truncated"}


def test_rollout_is_marketvecenv_with_the_same_actions(vec: MarketVecEnv) -> None:
    """A day through the wrapper gives MarketVecEnv's observations, state and rewards, and
    ends (terminated, not truncated) after the day's last interval."""
    env = MarketTorchEnv(vec, days=DAYS)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (EPISODE_INTERVALS, len(DAYS), vec.n_agents, 4))
    actions = actions.astype(np.float32)
    td = env.reset()
    got = []
    for t in range(EPISODE_INTERVALS):
        td.set((GROUP, "action"), torch.from_numpy(actions[t]))
        td = env.step(td)
        got.append(td["next"].clone())
        td = td["next"]
    direct = MarketVecEnv(len(DAYS), CONFIG, base_policy="tou", residual_scale=0.1)
    direct.reset(0, DAYS)
    for t in range(EPISODE_INTERVALS):
        obs, state, reward, done, _ = direct.step(actions[t])
        nxt = got[t]
        np.testing.assert_array_equal(
            nxt[GROUP, "reward"].numpy()[..., 0], reward.astype(np.float32)
        )
        np.testing.assert_array_equal(nxt[GROUP, "observation"].numpy(), obs)
        np.testing.assert_array_equal(nxt["state"].numpy(), state)
        assert nxt["done"][:, 0].tolist() == done.tolist() == [t == EPISODE_INTERVALS - 1] * 2
        assert nxt["terminated"][:, 0].tolist() == done.tolist()
        assert not nxt["truncated"].any()


def test_collector_resets_every_day_and_seeds_draw_training_days(vec: MarketVecEnv) -> None:
    env = MarketTorchEnv(vec)
    env.set_seed(5)
    collector = Collector(env, None, frames_per_batch=2 * 48, total_frames=2 * 48)
    batch = next(iter(collector))
    collector.shutdown()
    done = batch["next", "done"][..., 0]
    assert batch.shape == (len(DAYS), 48)
    assert done.sum().item() == 2 * len(DAYS)  # two whole days per world
    assert done[:, EPISODE_INTERVALS - 1].all() and done[:, -1].all()
    assert set(vec.days.tolist()) <= set(vec.train_days)


def test_partial_reset_and_wrong_days_are_refused(vec: MarketVecEnv) -> None:
    with pytest.raises(ConfigError, match="days has 1 entries for n_worlds=2"):
        MarketTorchEnv(vec, days=[9])
    env = MarketTorchEnv(vec)
    td = env.reset()
    td.set("_reset", torch.tensor([[True], [False]]))
    with pytest.raises(ConfigError, match="reset them all"):
        env.reset(td)


@pytest.mark.slow
def test_parallel_env_steps_worlds_in_worker_processes() -> None:
    def make() -> MarketTorchEnv:
        return MarketTorchEnv(MarketVecEnv(1, CONFIG), days=[DAYS[0]])

    env = ParallelEnv(2, make, mp_start_method="fork")  # workers inherit the imports
    try:
        rollout = env.rollout(3)
    finally:
        env.close()
    assert rollout[GROUP, "observation"].shape == (2, 1, 3, 32, OBS_DIM)  # workers, worlds, steps
    # both workers play the same day with random actions: same first observation
    first = rollout[GROUP, "observation"][:, 0, 0]
    torch.testing.assert_close(first[0], first[1])
