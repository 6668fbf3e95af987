"""Rollouts of teams in one batched environment, evaluation and the exploration measure.

With ``T`` teams the environment's ``B`` worlds are split in ``T`` consecutive blocks of
``B / T`` worlds; team ``t`` acts in block ``t``, and all teams' actors run in one
stacked forward pass (weights ``[T, N, ...]``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from agents.learning.buffer import Batch, ReplayBuffer
from agents.learning.env_protocol import VecMarketEnv
from agents.learning.errors import LearningConfigError
from agents.learning.networks import Params, stacked_forward

Policy = Callable[[torch.Tensor], torch.Tensor]
"""Maps observations ``[B, N, obs_dim]`` to actions ``[B, N, action_dim]`` in [-1, 1]."""

#: Bins per action dimension of the action-space coverage measure.
COVERAGE_BINS = 4


@dataclass(frozen=True)
class EpisodeStats:
    """What one episode of all worlds gave."""

    world_returns: torch.Tensor
    """``[B]``: sum over intervals and prosumers of the rewards of each world."""
    coverage: float
    """Action-space coverage of the episode's actions (:func:`action_coverage`)."""


def team_actions(team_params: Params, obs: torch.Tensor) -> torch.Tensor:
    """Actions ``[B, N, A]`` of ``T`` teams (params ``[T, N, ...]``) over ``B = T * W`` worlds."""
    n_teams = team_params[0].shape[0]
    b, n, d = obs.shape
    if b % n_teams:
        raise LearningConfigError(f"{b} worlds cannot be split among {n_teams} teams")
    x = obs.reshape(n_teams, b // n_teams, n, d).transpose(1, 2)
    y = stacked_forward(team_params[0::2], team_params[1::2], x, tanh_output=True)
    return y.transpose(1, 2).reshape(b, n, y.shape[-1])


def run_episode(
    env: VecMarketEnv,
    policy: Policy,
    *,
    seed: int,
    days: Sequence[int] | None,
    buffer: ReplayBuffer | None = None,
) -> EpisodeStats:
    """Play one episode in every world; store the transitions in ``buffer`` if given."""
    obs_np, state_np = env.reset(seed, days)
    obs, state = torch.from_numpy(obs_np).float(), torch.from_numpy(state_np).float()
    world_returns = torch.zeros(env.n_worlds, dtype=torch.float64)
    taken = []
    done = False
    while not done:
        with torch.no_grad():
            actions = policy(obs)
        next_obs_np, next_state_np, rewards_np, done_np, _ = env.step(actions.numpy())
        next_obs = torch.from_numpy(next_obs_np).float()
        next_state = torch.from_numpy(next_state_np).float()
        rewards = torch.from_numpy(np.asarray(rewards_np)).float()
        done_t = torch.from_numpy(np.asarray(done_np)).float()
        if buffer is not None:
            buffer.add(Batch(obs, state, actions, rewards, next_obs, next_state, done_t))
        world_returns += rewards.double().sum(dim=1)
        taken.append(actions)
        obs, state = next_obs, next_state
        done = bool(np.all(done_np))
    return EpisodeStats(world_returns, action_coverage(torch.stack(taken)))


def evaluate_cost(env: VecMarketEnv, team: Params, days: Sequence[int], seed: int) -> float:
    """Mean over ``days`` of the team's total cost (minus the world return), one team
    (params ``[1, N, ...]``) acting without noise in all worlds, ``B`` days at a time."""
    costs: list[float] = []
    for start in range(0, len(days), env.n_worlds):
        chunk = list(days[start : start + env.n_worlds])
        padded = [chunk[i % len(chunk)] for i in range(env.n_worlds)]
        stats = run_episode(env, lambda o: team_actions(team, o), seed=seed, days=padded)
        costs.extend((-stats.world_returns[: len(chunk)]).tolist())
    return float(np.mean(costs))


def action_coverage(actions: torch.Tensor, bins: int = COVERAGE_BINS) -> float:
    """Share of the ``bins^A`` cells of the action cube each prosumer visited (mean over
    prosumers), from actions ``[..., N, A]``."""
    n, a = actions.shape[-2:]
    cells = ((actions.reshape(-1, n, a) + 1.0) * 0.5 * bins).floor().clamp(0, bins - 1).long()
    code = (cells * (bins ** torch.arange(a))).sum(dim=-1) + torch.arange(n) * bins**a
    return float(torch.unique(code).numel()) / (n * math.pow(bins, a))
