"""The training environment of a training run: :func:`make_env`."""

from __future__ import annotations

from abm.envs.vec_env import MarketVecEnv
from abm.inputs.profiles import TEST_DAYS, TRAIN_DAYS
from abm.training.train_config import TrainRunConfig, spread_days


def make_env(config: TrainRunConfig) -> MarketVecEnv:
    """``config.worlds`` worlds of the run's market (``config.sim``, the whole of it), on its
    training and held-out days."""
    env = MarketVecEnv(
        config.worlds,
        config.sim,
        base_policy=config.base_policy,
        residual_scale=config.residual_scale,
    )
    env.train_days = spread_days(TRAIN_DAYS, config.train_days)
    env.test_days = spread_days(TEST_DAYS, config.eval_days)
    return env
