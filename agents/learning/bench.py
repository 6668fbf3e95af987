"""Micro-benchmark of the learners' hot paths beside a naive per-agent loop (same run).

- actor inference: all teams' actors of a population rollout step (``P + 1`` teams of
  ``N`` prosumers, ``W`` worlds each) in one stacked forward pass, against one
  ``nn.Sequential`` per prosumer and team called in a Python loop;
- learner updates: one MATD3 update of all prosumers with stacked networks (default
  design: twin centralised critics with a shared trunk and per-prosumer heads, delayed
  actor update), against the update written as a loop over prosumers with one actor, two
  full critics (``LOOP_CRITIC_HIDDEN``) and their optimisers each. To separate what the
  batching buys from what the critic design buys, the loop's own architecture (one full
  critic per prosumer and twin) is also timed batched (``updates_per_s_separate_critics``).

Inputs are random tensors of the market's sizes (``obs_dim`` 15, global state = every
observation plus ``n_bus`` voltages), so no environment is needed. Feeds the future
``p2pvar bench train``.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable

import torch
from torch import nn

from agents.learning.buffer import Batch
from agents.learning.env_protocol import EnvDims
from agents.learning.matd3 import MATD3, MATD3Config
from agents.learning.networks import StackedMLP
from agents.learning.rollout import team_actions
from agents.learning.seeding import seeded_generator

#: Hidden widths of the loop baseline's per-prosumer critics (a conventional MATD3 critic).
LOOP_CRITIC_HIDDEN = (128, 128)


def bench_train(
    n_agents: int = 32,
    obs_dim: int = 15,
    n_bus: int = 33,
    teams: int = 11,
    worlds_per_team: int = 4,
    min_time_s: float = 1.0,
) -> dict[str, float]:
    """Rates (calls/s) of the batched and the per-agent-loop versions and their ratios."""
    torch.set_num_threads(1)
    gen = seeded_generator(0)
    config = MATD3Config()
    dims = EnvDims(n_agents, obs_dim, n_agents * obs_dim + n_bus, 4)

    population = StackedMLP(
        (teams, n_agents), (obs_dim, *config.actor_hidden, 4), tanh_output=True, generator=gen
    )
    params = [p.detach() for p in population.params()]
    loop_actors = [_per_agent_actor(params, t, i) for t in range(teams) for i in range(n_agents)]
    obs = torch.randn(teams * worlds_per_team, n_agents, obs_dim, generator=gen)
    by_team = obs.reshape(teams, worlds_per_team, n_agents, obs_dim)

    def loop_inference() -> None:
        with torch.no_grad():
            for k, actor in enumerate(loop_actors):
                actor(by_team[k // n_agents, :, k % n_agents])

    def batched_inference() -> None:
        with torch.no_grad():
            team_actions(params, obs)

    batch = _random_batch(dims, config.batch_size, gen)
    learner = MATD3(dims, config, gen)
    separate = MATD3(
        dims,
        dataclasses.replace(config, critic_trunk=0, critic_hidden=LOOP_CRITIC_HIDDEN),
        gen,
    )
    naive = _LoopMATD3(dims, config)
    inference = _rate(batched_inference, min_time_s)
    inference_loop = _rate(loop_inference, min_time_s)
    updates = _rate(lambda: learner.update(batch), min_time_s)
    updates_separate = _rate(lambda: separate.update(batch), min_time_s)
    updates_loop = _rate(lambda: naive.update(batch), min_time_s)
    return {
        "n_agents": float(n_agents),
        "actor_inference_per_s": inference,
        "actor_inference_per_s_loop": inference_loop,
        "speedup_inference_vs_loop": inference / inference_loop,
        "updates_per_s": updates,
        "updates_per_s_separate_critics": updates_separate,
        "updates_per_s_loop": updates_loop,
        "speedup_update_vs_loop": updates / updates_loop,
        "speedup_batching_only": updates_separate / updates_loop,
    }


def _rate(fn: Callable[[], object], min_time_s: float) -> float:
    """Calls per second of ``fn`` (after one warm-up call), timed for at least ``min_time_s``."""
    fn()
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < min_time_s or calls < 3:
        fn()
        calls += 1
    return calls / elapsed


def _random_batch(dims: EnvDims, size: int, gen: torch.Generator) -> Batch:
    """A replay batch of random transitions."""
    n, o, s, a = dims.n_agents, dims.obs_dim, dims.state_dim, dims.action_dim
    return Batch(
        obs=torch.randn(size, n, o, generator=gen),
        state=torch.randn(size, s, generator=gen),
        actions=torch.rand(size, n, a, generator=gen) * 2 - 1,
        rewards=torch.randn(size, n, generator=gen),
        next_obs=torch.randn(size, n, o, generator=gen),
        next_state=torch.randn(size, s, generator=gen),
        done=torch.zeros(size),
    )


def _mlp(sizes: tuple[int, ...], tanh_output: bool) -> nn.Sequential:
    """A plain per-agent MLP (ReLU hidden layers)."""
    layers: list[nn.Module] = []
    for k in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[k], sizes[k + 1]))
        if k < len(sizes) - 2:
            layers.append(nn.ReLU())
    if tanh_output:
        layers.append(nn.Tanh())
    return nn.Sequential(*layers)


def _per_agent_actor(params: list[torch.Tensor], team: int, agent: int) -> nn.Sequential:
    """The actor of (team, agent) of a stacked population as its own ``nn.Sequential``."""
    weights, biases = params[0::2], params[1::2]
    sizes = (weights[0].shape[-2], *(w.shape[-1] for w in weights))
    actor = _mlp(sizes, tanh_output=True)
    linears = [m for m in actor if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for lin, w, b in zip(linears, weights, biases, strict=True):
            lin.weight.copy_(w[team, agent].T)
            lin.bias.copy_(b[team, agent])
    return actor


class _LoopMATD3:
    """The baseline: MATD3's update as a Python loop over prosumers, one module each."""

    def __init__(self, dims: EnvDims, config: MATD3Config) -> None:
        self.config = config
        self.n = dims.n_agents
        critic_sizes = (dims.state_dim + self.n * dims.action_dim, *LOOP_CRITIC_HIDDEN, 1)
        actor_sizes = (dims.obs_dim, *config.actor_hidden, dims.action_dim)
        self.actors = [_mlp(actor_sizes, tanh_output=True) for _ in range(self.n)]
        self.critics = [
            [_mlp(critic_sizes, tanh_output=False) for _ in range(2)] for _ in range(self.n)
        ]
        self.actor_targets = copy.deepcopy(self.actors)
        self.critic_targets = copy.deepcopy(self.critics)
        self.actor_opts = [torch.optim.Adam(a.parameters(), config.lr_actor) for a in self.actors]
        self.critic_opts = [
            torch.optim.Adam([*c[0].parameters(), *c[1].parameters()], config.lr_critic)
            for c in self.critics
        ]
        self.n_updates = 0

    def update(self, batch: Batch) -> None:
        cfg = self.config
        with torch.no_grad():
            next_a = torch.stack(
                [self.actor_targets[j](batch.next_obs[:, j]) for j in range(self.n)], dim=1
            )
            noise = (torch.randn_like(next_a) * cfg.target_noise).clamp(-0.5, 0.5)
            x_next = torch.cat([batch.next_state, (next_a + noise).clamp(-1, 1).flatten(1)], 1)
        x = torch.cat([batch.state, batch.actions.flatten(1)], 1)
        self.n_updates += 1
        for i in range(self.n):
            with torch.no_grad():
                q_next = torch.min(*(c(x_next) for c in self.critic_targets[i])).squeeze(1)
                y = batch.rewards[:, i] + cfg.gamma * (1 - batch.done) * q_next
            loss = sum(((c(x).squeeze(1) - y) ** 2).mean() for c in self.critics[i])
            self.critic_opts[i].zero_grad()
            loss.backward()
            self.critic_opts[i].step()
            if self.n_updates % cfg.policy_delay:
                continue
            joint = batch.actions.clone()
            joint[:, i] = self.actors[i](batch.obs[:, i])
            actor_loss = -self.critics[i][0](torch.cat([batch.state, joint.flatten(1)], 1)).mean()
            self.actor_opts[i].zero_grad()
            actor_loss.backward()
            self.actor_opts[i].step()
            pairs = [(self.actor_targets[i], self.actors[i])]
            pairs += list(zip(self.critic_targets[i], self.critics[i], strict=True))
            for target, source in pairs:
                for tp, sp in zip(target.parameters(), source.parameters(), strict=True):
                    tp.data.lerp_(sp.data, cfg.tau)
