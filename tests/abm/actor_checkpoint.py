"""A small actor checkpoint for the market: a freshly initialised MATD3 team, exported."""

from __future__ import annotations

from pathlib import Path

import torch

from abm.inputs.run_inputs import RunInputs
from agents.learning.checkpoint import RunIdentity, export_actors
from agents.learning.env_protocol import EnvDims
from agents.learning.matd3 import MATD3, MATD3Config
from agents.learning.seeding import seeded_generator
from agents.policy import ACTION_DIM, OBS_DIM

#: A small learner: only its actors are exported.
SMALL = MATD3Config(
    actor_hidden=(16, 16),
    critic_trunk=32,
    critic_hidden=(16,),
    buffer_size=64,
    actor_output_init=1.0,  # distinct actions per prosumer
)


def write_actor_checkpoint(
    directory: Path, world: RunInputs, *, network: str | None = None, obs_dim: int = OBS_DIM
) -> list[Path]:
    """Export one actor file per prosumer of ``world`` from a MATD3 team seeded with 7
    (``network`` and ``obs_dim`` may be changed to make mismatched files)."""
    torch.set_num_threads(1)
    ids = world.prosumer_ids
    dims = EnvDims(len(ids), obs_dim, len(ids) * obs_dim + world.feeder.n_bus, ACTION_DIM)
    learner = MATD3(dims, SMALL, seeded_generator(7))
    identity = RunIdentity(
        algo="matd3",
        network=network or world.feeder.name,
        prosumer_ids=ids,
        obs_dim=obs_dim,
        state_dim=dims.state_dim,
        action_dim=ACTION_DIM,
    )
    return export_actors(directory, learner.policy_team(), identity)
