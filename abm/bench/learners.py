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

Inputs are random tensors of the market's sizes (global state = every observation plus
``n_bus`` voltages), so no environment is needed. ``p2pvar bench train``
(:mod:`abm.bench.train`) times the updates with :func:`bench_updates` beside
population rollouts on the market environment.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable

import torch
from torch import nn

from abm.bench.timing import interleaved_rates
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
    loop_actors = per_agent_actors(params)
    obs = torch.randn(teams * worlds_per_team, n_agents, obs_dim, generator=gen)
    by_team = obs.reshape(teams, worlds_per_team, n_agents, obs_dim)

    def loop_inference() -> int:
        with torch.no_grad():
            for t, team in enumerate(loop_actors):
                for i, actor in enumerate(team):
                    actor(by_team[t, :, i])
        return 1

    def batched_inference() -> int:
        with torch.no_grad():
            team_actions(params, obs)
        return 1

    rates = interleaved_rates({"batched": batched_inference, "loop": loop_inference}, min_time_s)
    return {
        "n_agents": float(n_agents),
        "actor_inference_per_s": rates["batched"].per_s,
        "actor_inference_per_s_loop": rates["loop"].per_s,
        "speedup_inference_vs_loop": rates["batched"].per_s / rates["loop"].per_s,
        **bench_updates(dims, min_time_s),
    }


def bench_updates(dims: EnvDims, min_time_s: float = 1.0) -> dict[str, float]:
    """Updates per second of the default MATD3 update of all prosumers (stacked), of the
    loop's critic architecture batched, and of the per-prosumer loop, timed in alternation
    (so a change in the machine's load hits all three alike); and their ratios."""
    gen = seeded_generator(0)
    config = MATD3Config()
    batch = _random_batch(dims, config.batch_size, gen)
    learner = MATD3(dims, config, gen)
    separate = MATD3(
        dims,
        dataclasses.replace(config, critic_trunk=0, critic_hidden=LOOP_CRITIC_HIDDEN),
        gen,
    )
    naive = _LoopMATD3(dims, config)

    def one_update(update: Callable[[Batch], object]) -> Callable[[], int]:
        def run() -> int:
            update(batch)
            return 1

        return run

    runs = {"batched": learner.update, "separate": separate.update, "loop": naive.update}
    rates = interleaved_rates({k: one_update(u) for k, u in runs.items()}, min_time_s)
    batched, separate_rate, loop = rates["batched"], rates["separate"], rates["loop"]
    return {
        "updates_per_s": batched.per_s,
        "updates_per_s_separate_critics": separate_rate.per_s,
        "updates_per_s_loop": loop.per_s,
        "speedup_update_vs_loop": batched.per_s / loop.per_s,
        "speedup_batching_only": separate_rate.per_s / loop.per_s,
        "updates_per_cpu_s": batched.per_cpu_s,
        "updates_per_cpu_s_loop": loop.per_cpu_s,
        "speedup_update_vs_loop_cpu": batched.per_cpu_s / loop.per_cpu_s,
    }


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


def per_agent_actors(params: list[torch.Tensor]) -> list[list[nn.Sequential]]:
    """Every (team, prosumer) actor of a stacked population ``[T, N, ...]`` as its own
    ``nn.Sequential`` (the per-agent baseline)."""
    weights, biases = params[0::2], params[1::2]
    teams, n_agents = weights[0].shape[:2]
    sizes = (weights[0].shape[-2], *(w.shape[-1] for w in weights))
    actors = []
    for t in range(teams):
        team = []
        for i in range(n_agents):
            actor = _mlp(sizes, tanh_output=True)
            linears = [m for m in actor if isinstance(m, nn.Linear)]
            with torch.no_grad():
                for lin, w, b in zip(linears, weights, biases, strict=True):
                    lin.weight.copy_(w[t, i].T)
                    lin.bias.copy_(b[t, i])
            team.append(actor)
        actors.append(team)
    return actors


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
