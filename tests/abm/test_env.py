"""The PettingZoo environment."""

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test

from abm.config import SimConfig
from abm.envs.pettingzoo_env import MarketParallelEnv
from abm.envs.publication_cache import PublicationCache
from abm.envs.vec_env import MarketVecEnv
from abm.inputs.profiles import TRAIN_DAYS
from agents.policy import OBS_DIM, OBSERVATION_FEATURES


def test_parallel_api():
    parallel_api_test(MarketParallelEnv(SimConfig(market="multi")), num_cycles=30)


def _rollout(seed: int) -> list[dict]:
    env = MarketParallelEnv(SimConfig(market="multi", day_set="train"))
    env.reset(seed=seed)
    rng = np.random.default_rng(0)
    trajectory = []
    while env.agents:
        actions = {a: rng.uniform(-1, 1, 4).astype(np.float32) for a in env.agents}
        _, rewards, *_ = env.step(actions)
        trajectory.append(rewards)
    assert env.state().shape == (len(env.possible_agents) * OBS_DIM + env.n_bus,)
    return trajectory


def test_same_seed_same_trajectory():
    a, b = _rollout(5), _rollout(5)
    assert a == b and len(a) == 24
    assert _rollout(6) != a


def test_env_driven_by_rule_actions_equals_simulate():
    """Both faces, same actions: the env's tables equal those of ``p2pvar simulate``."""
    import pandas as pd

    from abm.sim.simulation import run_simulation
    from agents.policy import RulePolicy

    config = SimConfig(market="multi", protocol="bilateral")
    env = MarketParallelEnv(config, sample_days=False)
    env.reset(seed=0)
    rule = RulePolicy()
    while env.agents:
        actions = {a.logic.agent_id: rule.act(a.logic.observe()) for a in env.model.prosumers}
        env.step(actions)
    reference = run_simulation(config, progress=False)
    for name in ("intervals", "prosumers", "trades", "buses"):
        table = env.model.tables()[name]
        pd.testing.assert_frame_equal(table, reference.tables[name])


def test_observation_features_are_named_in_vector_order():
    env = MarketParallelEnv(SimConfig(market="multi"))
    observations, _ = env.reset(seed=1)
    prosumer = env.model.prosumers[0].logic
    vector = observations[prosumer.agent_id]
    assert len(OBSERVATION_FEATURES) == OBS_DIM == len(set(OBSERVATION_FEATURES))
    assert vector.shape == (OBS_DIM,)
    named = dict(zip(OBSERVATION_FEATURES, vector, strict=True))
    obs = prosumer.observe()
    assert named["pv_p"] == np.float32(obs.pv_kw / obs.scale_kw)
    assert named["market_mode"] == 3.0  # multi: Var (1) + P2P (2)
    spec = env.model.world.scenario.prosumers[0]
    assert named["pv_kwp_abs"] == np.float32(spec.pv_kwp / 100)
    assert named["inverter_kva_abs"] == np.float32(obs.inverter_kva / 100)
    assert named["hours_left"] == np.float32(23 / 24)  # the day's first interval
    assert named["retail_max_ahead"] >= named["retail_price"] >= named["retail_min_ahead"]


def test_observations_are_the_vectorised_env_s(tmp_path) -> None:
    """Same day, same actions: the PettingZoo env observes what the vectorised environment
    does, feature for feature (format 3: the record's and the outlook's)."""
    k = 100
    config = SimConfig(market="multi", day_set="train", first_day=k)
    env = MarketParallelEnv(config, sample_days=False)
    observations, _ = env.reset(seed=0)
    vec = MarketVecEnv(1, config)
    vec.cache = PublicationCache(vec.cache_key, vec.compute_day, tmp_path)
    vec_obs, _ = vec.reset(0, [TRAIN_DAYS[k]])
    ids = env.possible_agents
    rng = np.random.default_rng(0)
    for _ in range(24):
        ours = np.stack([observations[pid] for pid in ids])
        assert ours.shape == (len(ids), OBS_DIM)
        np.testing.assert_allclose(ours, vec_obs[0], atol=1e-6, rtol=1e-6)
        actions = rng.uniform(-1, 1, (len(ids), 4)).astype(np.float32)
        observations, *_ = env.step(dict(zip(ids, actions, strict=True)))
        vec_obs, *_ = vec.step(actions[None])


def test_supersuit_vector_env_runs_an_episode():
    """A third-party client: SuperSuit's PettingZoo-to-vector wrapper (it reads render_mode)."""
    import supersuit

    env = MarketParallelEnv(SimConfig(market="multi"))
    vec = supersuit.pettingzoo_env_to_vec_env_v1(env)
    assert vec.num_envs == len(env.possible_agents)
    observations, _ = vec.reset(seed=3)
    assert observations.shape == (vec.num_envs, OBS_DIM)
    rng = np.random.default_rng(0)
    steps, total_reward = 0, 0.0
    while True:
        actions = rng.uniform(-1, 1, (vec.num_envs, 4)).astype(np.float32)
        observations, rewards, terminations, truncations, _ = vec.step(actions)
        steps += 1
        total_reward += float(rewards.sum())
        assert observations.shape == (vec.num_envs, OBS_DIM) and np.isfinite(rewards).all()
        if (terminations | truncations).all():
            break
    assert steps == 24 and total_reward != 0.0  # one day of hourly intervals, bills paid


@pytest.mark.slow  # two simulated ieee33 days (about 12 s on a quiet machine)
def test_env_driven_by_its_mpc_policy_equals_simulate_mpc():
    """``policy_actions`` of the MPC (each prosumer's own LP, learning its fills from the
    env's outcomes) plays the run ``p2pvar simulate --policy mpc`` plays."""
    import pandas as pd

    from abm.sim.simulation import run_simulation

    config = SimConfig(market="multi", policy="mpc")
    env = MarketParallelEnv(config, sample_days=False)
    env.reset(seed=0)
    while env.agents:
        env.step(env.policy_actions())
    reference = run_simulation(config, progress=False)
    table = env.model.tables()["prosumers"].drop(columns="policy_fallback")
    expected = reference.tables["prosumers"].drop(columns="policy_fallback")
    pd.testing.assert_frame_equal(table, expected)
