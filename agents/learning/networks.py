"""Stacked per-agent MLPs: one weight tensor per layer for all agents (and all teams).

Layer ``k`` of agent ``g`` computes ``x @ W[g] + b[g]``; weights have shape
``lead + (in, out)`` where ``lead`` is ``(N,)`` for one team, ``(P, N)`` for a population
or ``(C, N)`` for ``C`` critics per agent. One ``torch.baddbmm`` evaluates every agent's
layer at once, never a Python loop over agents.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Sequence
from typing import TypeVar

import torch
from torch import nn

Params = list[torch.Tensor]


def stacked_forward(
    weights: Sequence[torch.Tensor],
    biases: Sequence[torch.Tensor],
    x: torch.Tensor,
    *,
    tanh_output: bool,
) -> torch.Tensor:
    """``x[lead..., batch, in]`` through the stacked MLP; ReLU between layers."""
    lead = weights[0].shape[:-2]
    groups = math.prod(lead)
    h = x.reshape(groups, x.shape[-2], x.shape[-1])
    last = len(weights) - 1
    for k, (w, b) in enumerate(zip(weights, biases, strict=True)):
        w_g = w.reshape(groups, w.shape[-2], w.shape[-1])
        h = torch.baddbmm(b.reshape(groups, 1, b.shape[-1]), h, w_g)
        if k < last:
            h = torch.relu(h)
    if tanh_output:
        h = torch.tanh(h)
    return h.reshape(*lead, x.shape[-2], h.shape[-1])


class StackedMLP(nn.Module):
    """MLPs of identical shape for every index of ``lead`` (agents, teams, critics)."""

    def __init__(
        self,
        lead: tuple[int, ...],
        sizes: Sequence[int],
        *,
        tanh_output: bool,
        generator: torch.Generator,
    ) -> None:
        """``sizes``: input, hidden..., output widths. PyTorch ``nn.Linear``'s default
        initialisation, U(-1/sqrt(in), 1/sqrt(in)), drawn from ``generator``."""
        super().__init__()
        self.lead = tuple(lead)
        self.sizes = tuple(sizes)
        self.tanh_output = tanh_output
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for n_in, n_out in itertools.pairwise(sizes):
            bound = 1.0 / math.sqrt(n_in)
            w = (torch.rand(*lead, n_in, n_out, generator=generator) * 2.0 - 1.0) * bound
            b = (torch.rand(*lead, n_out, generator=generator) * 2.0 - 1.0) * bound
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(b))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x[lead..., batch, in] -> [lead..., batch, out]``."""
        return stacked_forward(
            list(self.weights), list(self.biases), x, tanh_output=self.tanh_output
        )

    def params(self) -> Params:
        """Weights and biases interleaved (``w0, b0, w1, b1, ...``), the layout the
        evolution operators and population slots use."""
        return [p for pair in zip(self.weights, self.biases, strict=True) for p in pair]


ModuleT = TypeVar("ModuleT", bound=nn.Module)


def frozen_copy(module: ModuleT) -> ModuleT:
    """A target network: a deep copy that takes no gradient."""
    target = copy.deepcopy(module)
    target.requires_grad_(False)
    return target


@torch.no_grad()
def polyak_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """``target <- tau * source + (1 - tau) * target`` (all parameters at once)."""
    t_params: list[torch.Tensor] = list(target.parameters())
    s_params: list[torch.Tensor] = list(source.parameters())
    torch._foreach_lerp_(t_params, s_params, tau)
