"""Behaviour cloning: one actor fitted to demonstrated (observation, action) pairs.

The start of every learner's actors with ``p2pvar train --init clone`` (``docs/ea-matd3.md``):
an actor of the learners' shape (``actor_hidden``, ReLU, ``tanh`` output) regresses the
demonstrated actions (mean squared error, Adam, the learning rate decaying each epoch) on
inputs standardised by the demonstrations' mean and spread, which are then folded into its
first layer, so the clone is a plain actor of the learners' layout. One actor is fitted to
every prosumer's pairs (parameter sharing: the observation holds each prosumer's own sizes),
and every prosumer starts from a copy. After each epoch ``score`` (the validation cost of a
team of copies) is asked, and the epoch with the lowest score is kept (early stopping on
validation days, never on test days). After Pomerleau (1991) and, for starting
reinforcement learning from demonstrations, Nair et al. (2018).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from agents.learning.errors import LearningConfigError
from agents.learning.networks import Params, StackedMLP

#: Floor of the standardisation's spread (features constant over the demonstrations).
MIN_SPREAD = 1e-3


@dataclass(frozen=True)
class CloneConfig:
    """Behaviour-cloning settings (sources in docs/ea-matd3.md)."""

    epochs: int = 30
    """Passes over the demonstrations (the best epoch on validation is kept; with 15, the
    last was the best on ieee33's validation days)."""
    batch_size: int = 256
    """Pairs per gradient step."""
    lr: float = 1e-3
    """Adam learning rate of the first epoch."""
    lr_decay: float = 0.85
    """Factor on the learning rate after each epoch."""

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise LearningConfigError(f"clone {name} = {getattr(self, name)}: must be >= 1")
        if not (self.lr > 0 and 0 < self.lr_decay <= 1):
            raise LearningConfigError(
                f"clone lr = {self.lr}, lr_decay = {self.lr_decay}: need lr > 0, 0 < decay <= 1"
            )


@dataclass(frozen=True)
class Clone:
    """The cloned actor (one prosumer's parameters, ``w0, b0, ...``, ``w`` as ``(in, out)``)
    and its fit."""

    actor: Params
    epoch: int
    """The epoch kept (1-based)."""
    scores: list[float]
    """``score`` after each epoch."""
    losses: list[float]
    """Mean squared error over each epoch's pairs."""


def clone_actor(
    obs: np.ndarray,
    actions: np.ndarray,
    hidden: tuple[int, ...],
    config: CloneConfig,
    generator: torch.Generator,
    score: Callable[[Params], float],
) -> Clone:
    """Fit one actor to ``actions[M, A]`` given ``obs[M, O]`` (see the module docstring)."""
    x = torch.as_tensor(obs, dtype=torch.float32)
    y = torch.as_tensor(actions, dtype=torch.float32)
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y) or not len(x):
        raise LearningConfigError(
            f"demonstrations: obs {tuple(x.shape)} and actions {tuple(y.shape)} must be "
            "(M, obs_dim) and (M, action_dim) with M > 0"
        )
    if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
        raise LearningConfigError("demonstrations hold a value that is not a finite number")
    mean, spread = x.mean(dim=0), x.std(dim=0).clamp_min(MIN_SPREAD)
    x = (x - mean) / spread
    net = StackedMLP((1,), (x.shape[1], *hidden, y.shape[1]), tanh_output=True, generator=generator)
    optimiser = torch.optim.Adam(net.parameters(), lr=config.lr)
    best: tuple[float, int, Params] | None = None
    scores, losses = [], []
    for epoch in range(1, config.epochs + 1):
        order = torch.randperm(len(x), generator=generator)
        total = 0.0
        for start in range(0, len(x), config.batch_size):
            rows = order[start : start + config.batch_size]
            loss = ((net(x[rows][None]) - y[rows][None]) ** 2).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(rows)
        for group in optimiser.param_groups:
            group["lr"] *= config.lr_decay
        actor = _fold_standardisation(net, mean, spread)
        scores.append(score(actor))
        losses.append(total / len(x))
        if best is None or scores[-1] < best[0]:
            best = (scores[-1], epoch, actor)
    assert best is not None  # epochs >= 1
    return Clone(best[2], best[1], scores, losses)


def _fold_standardisation(net: StackedMLP, mean: torch.Tensor, spread: torch.Tensor) -> Params:
    """``net``'s parameters (one actor) with the input standardisation folded into layer 0:
    ``((x - m) / s) W + b = x (W / s) + (b - (m / s) W)``."""
    params = [p.detach()[0].clone() for p in net.params()]
    w0, b0 = params[0], params[1]
    params[0] = w0 / spread[:, None]
    params[1] = b0 - (mean / spread) @ w0
    return params


def team_of(actor: Params, lead: tuple[int, ...]) -> Params:
    """Copies of one actor stacked for ``lead`` (``(N,)`` prosumers, ``(T, N)`` teams)."""
    return [p.expand(*lead, *p.shape).clone() for p in actor]
