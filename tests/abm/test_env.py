"""The PettingZoo environment."""

import numpy as np
from pettingzoo.test import parallel_api_test

from abm.env import MarketParallelEnv
from abm.sim_config import SimConfig
from agents.policy import OBS_DIM


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

    from abm.simulation import run_simulation
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
