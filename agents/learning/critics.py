"""Critics of all prosumers, ``C`` per prosumer (twin: ``C = 2``), evaluated together.

Two designs behind one interface (``q_values`` for the critic update, ``q1_own_action``
for the actor update):

- :class:`SharedTrunkCritics` (centralised, the default): per twin ``c`` one trunk layer
  ``h = relu(W_c [s; a_1..a_N] + b_c)`` shared by all prosumers, and one head MLP per
  prosumer on ``h``. The trunk is computed once per batch instead of once per prosumer,
  and since its layer is linear, replacing prosumer ``i``'s action in the actor update is
  a rank-``A`` correction ``W_c[a_i] (mu_i - a_i)``: the update's cost grows with
  ``N x head size`` instead of ``N x (state + N A) x width``. The heads' first layers,
  which all read ``h``, are stored side by side as one wide layer per twin and evaluated
  as one matrix product.
- :class:`SeparateCritics`: one full MLP per prosumer and twin (stacked weights). Its
  input is ``[s; a_1..a_N]`` (centralised, trunk width 0) or the prosumer's own
  ``[o_i; a_i]`` (decentralised, ITD3).
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn

from agents.learning.env_protocol import EnvDims
from agents.learning.networks import StackedMLP, stacked_forward


class Critics(Protocol):
    """What MATD3's update needs of its critics."""

    def q_values(
        self, state: torch.Tensor, obs: torch.Tensor, actions: torch.Tensor
    ) -> torch.Tensor:
        """``Q[C, N, b]`` of the joint ``actions[b, N, A]`` (``state[b, S]``, ``obs[b, N, O]``)."""
        ...

    def q1_own_action(
        self, state: torch.Tensor, obs: torch.Tensor, actions: torch.Tensor, own: torch.Tensor
    ) -> torch.Tensor:
        """``Q_i1[N, b]``: first critic of prosumer ``i`` with its action replaced by
        ``own[b, i]`` and the others' from ``actions``."""
        ...

    def parameters(self) -> object:
        """The trainable parameters (``nn.Module.parameters``)."""
        ...


class SharedTrunkCritics(nn.Module):
    """Centralised critics: one trunk layer per twin, one head MLP per prosumer and twin."""

    def __init__(
        self,
        dims: EnvDims,
        n_critics: int,
        trunk_width: int,
        head_hidden: tuple[int, ...],
        generator: torch.Generator,
    ) -> None:
        super().__init__()
        self.dims = dims
        n_in = dims.state_dim + dims.n_agents * dims.action_dim
        self.trunk = StackedMLP(
            (n_critics,), (n_in, trunk_width), tanh_output=False, generator=generator
        )
        heads = StackedMLP(
            (n_critics, dims.n_agents),
            (trunk_width, *head_hidden, 1),
            tanh_output=False,
            generator=generator,
        )
        # The heads' first layers of all prosumers read the same trunk output: stored as
        # one wide layer per twin, [C, H, N * k], evaluated as one matrix product.
        w0, b0 = heads.weights[0].detach(), heads.biases[0].detach()  # [C, N, H, k], [C, N, k]
        c, n, h, k = w0.shape
        self.fan_w = nn.Parameter(w0.permute(0, 2, 1, 3).reshape(c, h, n * k).clone())
        self.fan_b = nn.Parameter(b0.reshape(c, 1, n * k).clone())
        self.head_w = nn.ParameterList(heads.weights[1:])
        self.head_b = nn.ParameterList(heads.biases[1:])

    def q_values(
        self, state: torch.Tensor, obs: torch.Tensor, actions: torch.Tensor
    ) -> torch.Tensor:
        c, n, b = self.fan_w.shape[0], self.dims.n_agents, state.shape[0]
        x = torch.cat([state, actions.flatten(1)], dim=1)
        h = torch.relu(self.trunk(x.expand(c, *x.shape)))  # [C, b, H]
        z = torch.baddbmm(self.fan_b, h, self.fan_w)  # [C, b, N k]
        return self._rest(z.reshape(c, b, n, -1).transpose(1, 2))

    def q1_own_action(
        self, state: torch.Tensor, obs: torch.Tensor, actions: torch.Tensor, own: torch.Tensor
    ) -> torch.Tensor:
        n, a, s = self.dims.n_agents, self.dims.action_dim, self.dims.state_dim
        w, b = self.trunk.weights[0][0], self.trunk.biases[0][0]  # first twin: [in, H], [H]
        x = torch.cat([state, actions.flatten(1)], dim=1)
        base = torch.addmm(b, x, w)  # [b, H]
        w_actions = w[s:].reshape(n, a, w.shape[1])
        correction = torch.einsum("bna,nah->nbh", own - actions, w_actions)
        h = torch.relu(base[None] + correction)  # [N, b, H]
        fan_w = self.fan_w[0].reshape(w.shape[1], n, -1).transpose(0, 1)  # [N, H, k]
        z = torch.baddbmm(self.fan_b[0].reshape(n, 1, -1), h, fan_w)  # [N, b, k]
        return self._rest(z[None])[0]

    def _rest(self, z: torch.Tensor) -> torch.Tensor:
        """``Q[C', N, b]`` from the heads' first-layer outputs ``z[C', N, b, k]`` (the first
        ``C'`` twins): the remaining head layers."""
        if not self.head_w:
            return z.squeeze(-1)
        twins = z.shape[0]
        weights = [w[:twins] for w in self.head_w]
        biases = [b[:twins] for b in self.head_b]
        return stacked_forward(weights, biases, torch.relu(z), tanh_output=False).squeeze(-1)


class SeparateCritics(nn.Module):
    """One full critic MLP per prosumer and twin, centralised or decentralised input."""

    def __init__(
        self,
        dims: EnvDims,
        n_critics: int,
        hidden: tuple[int, ...],
        centralised: bool,
        generator: torch.Generator,
    ) -> None:
        super().__init__()
        self.dims = dims
        self.centralised = centralised
        n = dims.n_agents
        n_in = (
            dims.state_dim + n * dims.action_dim if centralised else dims.obs_dim + dims.action_dim
        )
        self.net = StackedMLP(
            (n_critics, n), (n_in, *hidden, 1), tanh_output=False, generator=generator
        )

    def _inputs(self, state: torch.Tensor, obs: torch.Tensor, joint: torch.Tensor) -> torch.Tensor:
        """Inputs ``[N, b, in]`` from the joint action each critic judges, ``joint[N, b, N, A]``."""
        n, b = self.dims.n_agents, state.shape[0]
        if self.centralised:
            return torch.cat([state.expand(n, b, state.shape[1]), joint.flatten(2)], dim=-1)
        own = joint.diagonal(dim1=0, dim2=2).permute(2, 0, 1)  # [N, b, A]
        return torch.cat([obs.transpose(0, 1), own], dim=-1)

    def q_values(
        self, state: torch.Tensor, obs: torch.Tensor, actions: torch.Tensor
    ) -> torch.Tensor:
        x = self._inputs(state, obs, actions[None].expand(self.dims.n_agents, *actions.shape))
        return self.net(x.expand(self.net.lead[0], *x.shape)).squeeze(-1)

    def q1_own_action(
        self, state: torch.Tensor, obs: torch.Tensor, actions: torch.Tensor, own: torch.Tensor
    ) -> torch.Tensor:
        n = self.dims.n_agents
        mask = torch.eye(n).reshape(n, 1, n, 1)
        joint = actions[None] * (1.0 - mask) + own[None] * mask  # [N, b, N, A]
        x = self._inputs(state, obs, joint)
        first_w = [w[:1] for w in self.net.weights]
        first_b = [b[:1] for b in self.net.biases]
        return stacked_forward(first_w, first_b, x[None], tanh_output=False)[0].squeeze(-1)
