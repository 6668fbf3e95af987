"""The contract between learners and a vectorised market environment.

``B`` independent worlds times ``N`` prosumers step together; every episode is one day of
:data:`agents.interval.EPISODE_INTERVALS` intervals and all worlds finish at once. Actions are
normalised to ``[-1, 1]`` (:data:`agents.policy.ACTION_DIM` per prosumer); rewards are minus
each bill. The market environment (:mod:`abm.envs.vec_env`) and the test toy
(:mod:`tests.support.toy_env`) both implement it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


class VecMarketEnv(Protocol):
    """``B`` worlds x ``N`` prosumers stepped together (arrays are float numpy arrays)."""

    n_worlds: int
    """``B``: worlds stepped together."""
    n_agents: int
    """``N``: prosumers per world."""
    obs_dim: int
    """Length of one prosumer's observation."""
    state_dim: int
    """Length of a world's global state (input of centralised critics)."""
    action_dim: int
    """Actions per prosumer (4)."""
    network: str
    """Name of the feeder (written into checkpoints and actor files)."""
    prosumer_ids: tuple[str, ...]
    """The ``N`` prosumer ids in agent order."""
    train_days: Sequence[int]
    """Days an episode may be sampled from in training."""
    val_days: Sequence[int]
    """Validation days: every evaluation while training, and every choice it makes."""
    test_days: Sequence[int]
    """Held-out test days, read only by the final evaluation (none while training)."""
    base_policy: str
    """``""``, or the base policy (``rule``, ``tou``) whose actions the learners' actions
    correct (residual policy learning); written into actor files."""
    residual_scale: float
    """Weight of the learners' actions added to the base policy's (with a base policy)."""

    def reset(self, seed: int, days: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Start an episode in every world (``days``: one per world, else sampled from
        ``train_days``); return ``obs[B, N, obs_dim]`` and ``state[B, state_dim]``."""
        ...

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Apply ``actions[B, N, action_dim]`` in ``[-1, 1]``; return ``obs``, ``state``,
        ``rewards[B, N]``, ``done[B]`` and per-world ``info``."""
        ...


@dataclass(frozen=True)
class EnvDims:
    """The sizes a learner's networks are built from."""

    n_agents: int
    obs_dim: int
    state_dim: int
    action_dim: int

    @classmethod
    def of(cls, env: VecMarketEnv) -> EnvDims:
        """The sizes of ``env``."""
        return cls(env.n_agents, env.obs_dim, env.state_dim, env.action_dim)
