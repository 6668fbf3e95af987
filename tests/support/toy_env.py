"""A tiny continuous multi-agent task honouring the environment contract (for tests and benches).

Each interval every world draws a context ``z`` (3 values in ``[-1, 1]``) and every agent
sees ``z``, its day's feature and the hour. Agent ``i`` is paid for two things:

- its own target: action components 1..3 should equal ``tanh(W_i z + day_feature)``
  (``W_i`` fixed per agent);
- a team target that depends on the others' actions: the mean over agents of action
  component 0 should equal ``z[0] / 2``.

``reward_i = -mean_k (a_ik - target_ik)^2 - (mean_j a_j0 - z0/2)^2``, so the best team
return is 0 and a learner's progress is the rise of the return toward it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from agents.interval import EPISODE_INTERVALS
from agents.learning.errors import LearningConfigError

_CONTEXT_DIM = 3
_N_DAYS = 20


class ToyTeamEnv:
    """``n_worlds`` worlds of ``n_agents`` agents; days 0-11 fit, 12-14 validate, 15-19 test."""

    obs_dim = _CONTEXT_DIM + 3
    state_dim = _CONTEXT_DIM + 3
    action_dim = 4
    network = "toy"
    base_policy = ""
    residual_scale = 1.0
    train_days: Sequence[int] = tuple(range(12))
    val_days: Sequence[int] = tuple(range(12, 15))
    test_days: Sequence[int] = tuple(range(15, _N_DAYS))

    def __init__(self, n_worlds: int, n_agents: int) -> None:
        if n_worlds < 1 or n_agents < 1:
            raise LearningConfigError(
                f"ToyTeamEnv: n_worlds={n_worlds}, n_agents={n_agents}: both must be >= 1"
            )
        self.n_worlds = n_worlds
        self.n_agents = n_agents
        self.prosumer_ids = tuple(f"p{i + 1:02d}" for i in range(n_agents))
        task = np.random.default_rng(12345)
        self._w = task.normal(0.0, 1.0, (n_agents, _CONTEXT_DIM, 3))
        self._day_feature = np.sin(np.arange(_N_DAYS) * 1.3)
        self._rng = np.random.default_rng(0)
        self._t = 0
        self._days = np.zeros(n_worlds, dtype=np.int64)
        self._z = np.zeros((n_worlds, _CONTEXT_DIM))

    def reset(self, seed: int, days: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Start every world at hour 0 of its day (sampled from ``train_days`` if not given)."""
        self._rng = np.random.default_rng(seed)
        if days is None:
            chosen = self._rng.choice(np.asarray(self.train_days), self.n_worlds)
        else:
            chosen = np.asarray(days, dtype=np.int64)
        if len(chosen) != self.n_worlds:
            raise LearningConfigError(f"reset: {len(chosen)} days for {self.n_worlds} worlds")
        self._days = chosen
        self._t = 0
        return self._observe()

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Pay each agent for its own and the team's target, then draw the next context."""
        a = np.clip(np.asarray(actions, dtype=np.float64), -1.0, 1.0)
        if a.shape != (self.n_worlds, self.n_agents, self.action_dim):
            raise LearningConfigError(f"step: actions shape {a.shape}")
        own = np.tanh(
            np.einsum("bc,nck->bnk", self._z, self._w)
            + self._day_feature[self._days][:, None, None]
        )
        own_error = ((a[..., 1:] - own) ** 2).mean(axis=-1)
        team_error = (a[..., 0].mean(axis=1) - 0.5 * self._z[:, 0]) ** 2
        rewards = -(own_error + team_error[:, None])
        self._t += 1
        obs, state = self._observe()
        done = np.full(self.n_worlds, self._t >= EPISODE_INTERVALS)
        return obs, state, rewards, done, {"team_error": team_error}

    def _observe(self) -> tuple[np.ndarray, np.ndarray]:
        """Draw this interval's context; each agent observes the whole world state."""
        self._z = self._rng.uniform(-1.0, 1.0, (self.n_worlds, _CONTEXT_DIM))
        angle = 2.0 * np.pi * self._t / EPISODE_INTERVALS
        b = self.n_worlds
        state = np.concatenate(
            [
                self._z,
                self._day_feature[self._days][:, None],
                np.full((b, 1), np.sin(angle)),
                np.full((b, 1), np.cos(angle)),
            ],
            axis=1,
        )
        obs = np.broadcast_to(state[:, None, :], (b, self.n_agents, self.obs_dim)).copy()
        return obs.astype(np.float32), state.astype(np.float32)
