"""Replay buffer: a torch ring buffer of transitions of all agents of many worlds."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Batch:
    """Transitions (leading dimension ``batch``); per-agent fields are ``[batch, N, ...]``."""

    obs: torch.Tensor
    state: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_obs: torch.Tensor
    next_state: torch.Tensor
    done: torch.Tensor


class ReplayBuffer:
    """Holds the last ``capacity`` transitions; ``add`` takes one step of all worlds."""

    _FIELDS = ("obs", "state", "actions", "rewards", "next_obs", "next_state", "done")

    def __init__(
        self, capacity: int, n_agents: int, obs_dim: int, state_dim: int, action_dim: int
    ) -> None:
        self.capacity = capacity
        shapes = {
            "obs": (n_agents, obs_dim),
            "state": (state_dim,),
            "actions": (n_agents, action_dim),
            "rewards": (n_agents,),
            "next_obs": (n_agents, obs_dim),
            "next_state": (state_dim,),
            "done": (),
        }
        self._data = {k: torch.zeros((capacity, *s)) for k, s in shapes.items()}
        self._pos = 0
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def add(self, transitions: Batch) -> None:
        """Append ``B`` transitions (one step of every world), overwriting the oldest."""
        n = transitions.obs.shape[0]
        idx = (self._pos + torch.arange(n)) % self.capacity
        for key in self._FIELDS:
            self._data[key][idx] = getattr(transitions, key).float()
        self._pos = (self._pos + n) % self.capacity
        self._size = min(self._size + n, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        """``batch_size`` transitions drawn uniformly with replacement."""
        idx = torch.randint(0, self._size, (batch_size,), generator=generator)
        return Batch(**{k: self._data[k][idx] for k in self._FIELDS})

    def state_dict(self) -> dict[str, object]:
        """The stored transitions (only the filled part) and the write position."""
        filled = {k: v[: self._size].clone() for k, v in self._data.items()}
        return {"data": filled, "pos": self._pos, "size": self._size}

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Restore what :meth:`state_dict` returned."""
        size = int(state["size"])  # type: ignore[call-overload]
        data: dict[str, torch.Tensor] = state["data"]  # type: ignore[assignment]
        for key in self._FIELDS:
            self._data[key][:size] = data[key]
        self._pos = int(state["pos"])  # type: ignore[call-overload]
        self._size = size
