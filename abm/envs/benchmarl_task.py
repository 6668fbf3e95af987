"""The market as a BenchMARL task (the ``torchrl`` extra): :class:`MarketTask` hands
BenchMARL a :class:`abm.envs.torchrl_env.MarketTorchEnv` over ``p2pvar train``'s
environment (:func:`abm.envs.train_env.make_env`), so BenchMARL's algorithms train on
the same market, residual setting and training days."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from benchmarl.environments.common import Task, TaskClass
from torchrl.data import Composite
from torchrl.envs import EnvBase

from abm.envs.torchrl_env import MarketTorchEnv
from abm.envs.train_env import make_env
from abm.training.train_config import TrainRunConfig
from agents.interval import EPISODE_INTERVALS


class MarketTaskClass(TaskClass):
    """The task: ``config["run"]`` is the :class:`TrainRunConfig` whose market it trains on
    (its ``worlds`` are replaced by BenchMARL's ``num_envs``)."""

    def get_env_fun(
        self, num_envs: int, continuous_actions: bool, seed: int | None, device: Any
    ) -> Callable[[], EnvBase]:
        run: TrainRunConfig = self.config["run"]
        if not continuous_actions:
            raise ValueError("the market's actions are continuous")
        return lambda: MarketTorchEnv(
            make_env(dataclasses.replace(run, worlds=num_envs)), seed=seed or 0
        )

    def supports_continuous_actions(self) -> bool:
        return True

    def supports_discrete_actions(self) -> bool:
        return False

    def max_steps(self, env: EnvBase) -> int:
        return EPISODE_INTERVALS

    def has_render(self, env: EnvBase) -> bool:
        return False

    def group_map(self, env: EnvBase) -> dict[str, list[str]]:
        return dict(env.group_map)

    def observation_spec(self, env: EnvBase) -> Composite:
        spec = env.full_observation_spec_unbatched.clone()
        del spec["state"]
        return spec

    def info_spec(self, env: EnvBase) -> Composite | None:
        return None

    def state_spec(self, env: EnvBase) -> Composite | None:
        return Composite(state=env.full_observation_spec_unbatched["state"].clone())

    def action_spec(self, env: EnvBase) -> Composite:
        return env.full_action_spec_unbatched

    def action_mask_spec(self, env: EnvBase) -> Composite | None:
        return None

    @staticmethod
    def env_name() -> str:
        return "p2pvar"


class MarketTask(Task):
    """The market's BenchMARL tasks:
    ``MarketTask.MARKET.get_task({"run": TrainRunConfig(...)})``."""

    MARKET = None

    @staticmethod
    def associated_class() -> type[TaskClass]:
        return MarketTaskClass


def market_task(run: TrainRunConfig) -> MarketTaskClass:
    """The BenchMARL task of ``run``'s market."""
    return MarketTaskClass(name="MARKET", config={"run": run})
