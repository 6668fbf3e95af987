"""Small learners on the toy environment, one torch thread (CI shares two cores)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from agents.learning.ea_matd3 import EAMATD3Config
from agents.learning.evolution import EvolutionConfig
from agents.learning.matd3 import MATD3Config
from tests.support.toy_env import ToyTeamEnv

torch.set_num_threads(1)

#: A MATD3 small enough to learn the toy task in a few seconds.
TINY = MATD3Config(
    actor_hidden=(32, 32),
    critic_trunk=64,
    critic_hidden=(64, 64),
    batch_size=64,
    buffer_size=5_000,
    learning_starts=200,
    updates_per_rollout=40,
    gamma=0.5,
    actor_output_init=1.0,
)
#: EA-MATD3 with 4 teams beside the learner (5 blocks of 3 worlds).
TINY_EA = EAMATD3Config(learner=TINY, evolution=EvolutionConfig(population=4, elites=1))


def toy_env() -> ToyTeamEnv:
    """15 worlds of 3 agents (EA-MATD3: 3 worlds for each of its 5 teams)."""
    return ToyTeamEnv(15, 3)


def tiny_config(algo: str) -> MATD3Config | EAMATD3Config:
    """The tiny config of ``algo``. ITD3's critics see only their own agent, and in 10
    iterations they do not learn the toy's shared team error from the team's mean reward:
    on the toy, ITD3 learns each agent's own reward (``objective = "individual"``)."""
    if algo == "itd3":
        return dataclasses.replace(TINY, objective="individual")
    return TINY_EA if algo == "ea-matd3" else TINY


@pytest.fixture(params=["matd3", "maddpg", "itd3", "ea-matd3"])
def algo(request: pytest.FixtureRequest) -> str:
    """Every learner."""
    return request.param
