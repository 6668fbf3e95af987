"""A training run on the vectorised market: environment, learner settings, the loop.

The learners (``agents.learning``, torch) are imported inside the functions that need them,
so this module loads without torch; calling them without it raises the learners' one-line
``LearningError`` saying which extra to install.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import TYPE_CHECKING

from abm.config import SimConfig
from abm.errors import ConfigError
from abm.profiles import TEST_DAYS, TRAIN_DAYS
from abm.training.train_config import AlgoName, TrainRunConfig, spread_days
from abm.training.vec_env import MarketVecEnv
from agents.interval import EPISODE_INTERVALS

if TYPE_CHECKING:
    from agents.learning.ea_matd3 import EAMATD3Config
    from agents.learning.matd3 import MATD3Config

#: Learner settings of :class:`TrainRunConfig` passed on to ``MATD3Config`` when given.
LEARNER_FIELDS = ("updates_per_rollout", "learning_starts", "batch_size", "buffer_size")


def make_env(config: TrainRunConfig) -> MarketVecEnv:
    """``config.worlds`` worlds of the run's market, on its training and held-out days."""
    market = SimConfig(network=config.network, market=config.market, scenario=config.scenario)
    env = MarketVecEnv(config.worlds, market)
    env.train_days = spread_days(TRAIN_DAYS, config.train_days)
    env.test_days = spread_days(TEST_DAYS, config.eval_days)
    return env


def learner_config(config: TrainRunConfig) -> MATD3Config | EAMATD3Config:
    """The learner's settings: its defaults with the run's given values."""
    from agents.learning.ea_matd3 import EAMATD3Config
    from agents.learning.evolution import EvolutionConfig
    from agents.learning.matd3 import MATD3Config

    given = {name: getattr(config, name) for name in LEARNER_FIELDS}
    learner = dataclasses.replace(
        MATD3Config(), **{k: v for k, v in given.items() if v is not None}
    )
    if config.algo != AlgoName.EA_MATD3:
        return learner
    evolution = EvolutionConfig()
    if config.population is not None:
        evolution = dataclasses.replace(evolution, population=config.population)
    teams = evolution.population + 1
    if config.worlds % teams:
        raise ConfigError(
            f"worlds={config.worlds} must be a multiple of population + 1 = {teams} "
            "(every ea-matd3 team plays the same days)"
        )
    return EAMATD3Config(learner=learner, evolution=evolution)


def iterations_of(config: TrainRunConfig) -> int:
    """Iterations of the run: ``iterations``, or fewer if ``env_steps`` comes first."""
    if config.env_steps is None:
        return config.iterations
    per_iteration = config.worlds * EPISODE_INTERVALS
    return min(config.iterations, math.ceil(config.env_steps / per_iteration))


def run_training(
    config: TrainRunConfig,
    learner: MATD3Config | EAMATD3Config,
    out_dir: Path,
    *,
    resume: bool,
    progress: bool,
) -> list[dict[str, float]]:
    """Train (or resume) into ``out_dir``: ``checkpoint.pt``, ``metrics.csv``,
    ``tensorboard/`` and ``actors/``; return the metrics rows."""
    from agents.learning.train import TrainConfig, make_algorithm, train

    env = make_env(config)
    algorithm = make_algorithm(str(config.algo), env, config.seed, learner)
    loop = TrainConfig(
        iterations=iterations_of(config),
        eval_every=config.eval_every,
        checkpoint_every=config.checkpoint_every,
        checkpoint_buffer=config.checkpoint_buffer,
        progress=progress,
        max_wall_s=None if config.minutes is None else 60.0 * config.minutes,
        tensorboard=True,
    )
    return train(algorithm, env, loop, out_dir, resume=resume)
