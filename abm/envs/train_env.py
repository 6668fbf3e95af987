"""The training environment of a training run: :func:`make_env`."""

from __future__ import annotations

from abm.envs.vec_env import MarketVecEnv
from abm.inputs.profiles import FIT_DAYS, VALIDATION_DAYS
from abm.training.train_config import TrainRunConfig, spread_days


def make_env(config: TrainRunConfig, *, test_days: bool = False) -> MarketVecEnv:
    """``config.worlds`` worlds of the run's market (``config.sim``, the whole of it): its
    episodes drawn from the training days less validation, its evaluations on the validation
    days. Only with ``test_days`` (the final evaluation) does it hold the test days at all."""
    env = MarketVecEnv(
        config.worlds,
        config.sim,
        base_policy=config.base_policy,
        residual_scale=config.residual_scale,
        test_days=test_days,
    )
    env.train_days = spread_days(FIT_DAYS, config.train_days)
    env.val_days = spread_days(VALIDATION_DAYS, config.val_days)
    return env
