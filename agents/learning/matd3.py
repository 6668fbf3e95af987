"""MATD3: multi-agent TD3 with centralised twin critics (Ackermann et al. 2019).

Every prosumer ``i`` has an actor ``mu_i(o_i)`` and two critics ``Q_i1, Q_i2(s, a_1..a_N)``
that see the global state and all actions (centralised training, decentralised
execution). One update, for all prosumers at once (stacked weights, no loop over agents):

1. critic targets ``y_i = r_i + gamma (1 - done) min_c Q'_ic(s', a'_1..a'_N)`` with the
   target actors' actions ``a'_j = clip(mu'_j(o'_j) + clip(eps, -c, c), -1, 1)``
   (clipped double-Q, target policy smoothing);
2. critics regress on ``y_i``;
3. every ``policy_delay`` updates, actor ``i`` ascends ``Q_i1`` with its own action
   replaced by ``mu_i(o_i)`` and the others' actions from the buffer, then all target
   networks follow by Polyak averaging.

A training iteration plays one episode (one day) in all worlds with exploration noise
(uniform random actions until ``learning_starts`` transitions are stored), then makes
``updates_per_rollout`` updates. MADDPG (:mod:`agents.learning.maddpg`) and independent
TD3 (:mod:`agents.learning.itd3`) are this algorithm with features switched off.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from agents.learning.buffer import Batch, ReplayBuffer
from agents.learning.critics import SeparateCritics, SharedTrunkCritics
from agents.learning.env_protocol import EnvDims, VecMarketEnv
from agents.learning.errors import LearningConfigError
from agents.learning.imitation import team_of
from agents.learning.networks import (
    Params,
    StackedMLP,
    frozen_copy,
    polyak_update,
)
from agents.learning.rollout import EpisodeStats, run_episode, team_actions
from agents.learning.seeding import draw_seed

#: The objectives a critic may learn (:attr:`MATD3Config.objective`).
OBJECTIVES = ("team", "individual")


@dataclass(frozen=True)
class MATD3Config:
    """MATD3 settings; defaults and their sources in docs/ea-matd3.md."""

    #: The run settings (``p2pvar train`` flags) MATD3 takes (``agents.learners``).
    SETTINGS: ClassVar[tuple[str, ...]] = (
        "updates_per_rollout",
        "learning_starts",
        "batch_size",
        "buffer_size",
    )

    actor_hidden: tuple[int, ...] = (64, 64)
    """Hidden widths of each prosumer's actor."""
    actor_output_init: float = 0.01
    """Factor on the initial weights and biases of the actors' last layer: small values
    start a residual policy near its base policy (Silver et al. 2018 start from 0); 1
    gives PyTorch's default initialisation."""
    critic_trunk: int = 256
    """Width of the trunk layer that centralised critics share (0: one full MLP per
    prosumer and twin, see :mod:`agents.learning.critics`)."""
    critic_hidden: tuple[int, ...] = (64, 64)
    """Hidden widths of each prosumer's critic head (or whole critic, without trunk)."""
    lr_actor: float = 1e-3
    """Adam learning rate of the actors (ASSUME MATD3: 1e-3; CleanRL TD3: 3e-4)."""
    lr_critic: float = 1e-3
    """Adam learning rate of the critics (ASSUME MATD3: 1e-3; CleanRL TD3: 3e-4)."""
    gamma: float = 0.99
    """Discount factor per interval (CleanRL: 0.99)."""
    tau: float = 0.005
    """Polyak rate of the target networks (CleanRL: 0.005)."""
    batch_size: int = 128
    """Transitions per update (ASSUME: 128; CleanRL: 256)."""
    buffer_size: int = 50_000
    """Replay capacity in transitions of all prosumers of one world (ASSUME: 50k)."""
    updates_per_rollout: int = 50
    """Gradient updates after each batched one-day rollout (ASSUME: 100 per simulated day;
    50 fits the default budget, docs/ea-matd3.md)."""
    learning_starts: int = 1_000
    """Transitions stored (uniform random actions) before the first update."""
    exploration_noise: float = 0.1
    """Sigma of the Gaussian action noise while collecting (CleanRL: 0.1)."""
    target_noise: float = 0.2
    """Sigma of the target policy smoothing noise (CleanRL: 0.2); 0 switches it off."""
    target_noise_clip: float = 0.5
    """Clip of the smoothing noise (CleanRL: 0.5)."""
    policy_delay: int = 2
    """Critic updates per actor and target update (CleanRL: 2)."""
    n_critics: int = 2
    """Critics per prosumer: 2 gives clipped double-Q, 1 a single critic (MADDPG)."""
    centralised: bool = True
    """Critics see the global state and all actions; False: own observation and action."""
    objective: str = "team"
    """What each prosumer's critic learns: ``team``, the mean reward of all prosumers (minus
    the team's bill over N: the objective EA-MATD3's fitness and the optimum share), or
    ``individual``, its own reward (minus its own bill)."""

    def __post_init__(self) -> None:
        positive = ("batch_size", "buffer_size", "updates_per_rollout", "policy_delay")
        for name in positive:
            if getattr(self, name) < 1:
                raise LearningConfigError(f"{name} = {getattr(self, name)}: must be >= 1")
        if self.n_critics not in (1, 2):
            raise LearningConfigError(f"n_critics = {self.n_critics}: must be 1 or 2")
        if not 0.0 < self.tau <= 1.0:
            raise LearningConfigError(f"tau = {self.tau}: must be in (0, 1]")
        if self.objective not in OBJECTIVES:
            raise LearningConfigError(
                f"objective = {self.objective!r}: expected one of {', '.join(OBJECTIVES)}"
            )

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], worlds: int) -> MATD3Config:
        """The defaults with the run's given ``settings`` (``agents.learners.LearnerConfig``;
        ``worlds`` is free)."""
        return dataclasses.replace(cls(), **settings)


class MATD3:
    """Actors, critics, their targets and optimisers, and the replay buffer."""

    name = "matd3"
    config_class = MATD3Config

    def __init__(self, dims: EnvDims, config: MATD3Config, generator: torch.Generator):
        config = self.settings(config)
        self.config = config
        self.generator = generator
        n, obs_dim, act_dim = dims.n_agents, dims.obs_dim, dims.action_dim
        self.n_agents = n
        self.actor_hidden = config.actor_hidden
        self.actor = make_actors((n,), dims, config, generator)
        self.critic = make_critics(dims, config, generator)
        self.actor_target = frozen_copy(self.actor)
        self.critic_target = frozen_copy(self.critic)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=config.lr_actor, fused=True)
        self.critic_opt = torch.optim.Adam(
            self.critic.parameters(), lr=config.lr_critic, fused=True
        )
        self.buffer = ReplayBuffer(config.buffer_size, n, obs_dim, dims.state_dim, act_dim)
        self.n_updates = 0

    @staticmethod
    def settings(config: MATD3Config) -> MATD3Config:
        """The config this algorithm runs with (subclasses switch features off)."""
        return config

    def start_from(self, actor: Params) -> None:
        """Every prosumer's actor and its target become copies of ``actor`` (one actor's
        parameters in the layout of :meth:`StackedMLP.params`, e.g. a behaviour clone)."""
        with torch.no_grad():
            for net in (self.actor, self.actor_target):
                for p, a in zip(net.params(), team_of(actor, (self.n_agents,)), strict=True):
                    p.copy_(a)

    # --- acting -----------------------------------------------------------------------
    def policy_team(self) -> Params:
        """The current actors as a one-team stack ``[1, N, ...]`` (no gradient)."""
        return [p.detach()[None] for p in self.actor.params()]

    def explore(self, obs: torch.Tensor) -> torch.Tensor:
        """The actors' actions on ``obs[B, N, O]`` with exploration (:meth:`add_exploration`)."""
        return self.add_exploration(team_actions(self.policy_team(), obs))

    def add_exploration(self, actions: torch.Tensor) -> torch.Tensor:
        """Gaussian noise on ``actions``, or uniform random actions before learning starts."""
        if len(self.buffer) < self.config.learning_starts:
            return torch.rand(actions.shape, generator=self.generator) * 2.0 - 1.0
        noise = torch.randn(actions.shape, generator=self.generator)
        return (actions + noise * self.config.exploration_noise).clamp(-1.0, 1.0)

    # --- one training iteration --------------------------------------------------------
    def iterate(self, env: VecMarketEnv) -> dict[str, float]:
        """One exploring episode in all worlds (days sampled by the environment), then updates."""
        stats = run_episode(
            env, self.explore, seed=draw_seed(self.generator), days=None, buffer=self.buffer
        )
        return {**episode_metrics(stats), **self.train()}

    def train(self) -> dict[str, float]:
        """``updates_per_rollout`` updates (none before ``learning_starts``); mean losses."""
        if len(self.buffer) < self.config.learning_starts:
            return {}
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        for _ in range(self.config.updates_per_rollout):
            batch = self.buffer.sample(self.config.batch_size, self.generator)
            for key, value in self.update(batch).items():
                sums[key] = sums.get(key, 0.0) + value
                counts[key] = counts.get(key, 0) + 1
        return {key: sums[key] / counts[key] for key in sums}

    # --- one update ----------------------------------------------------------------------
    def update(self, batch: Batch) -> dict[str, float]:
        """One critic update, and an actor and target update every ``policy_delay``."""
        cfg, n = self.config, self.n_agents
        with torch.no_grad():
            next_actions = team_actions(
                [p[None] for p in self.actor_target.params()], batch.next_obs
            )
            if cfg.target_noise > 0.0:
                noise = torch.randn(next_actions.shape, generator=self.generator)
                noise = (noise * cfg.target_noise).clamp(
                    -cfg.target_noise_clip, cfg.target_noise_clip
                )
                next_actions = (next_actions + noise).clamp(-1.0, 1.0)
            q_next = self.critic_target.q_values(batch.next_state, batch.next_obs, next_actions)
            q_next = q_next.min(dim=0).values  # [N, b]
            rewards = batch.rewards  # [b, N]
            if cfg.objective == "team":
                rewards = rewards.mean(dim=1, keepdim=True).expand_as(rewards)
            y = rewards.T + cfg.gamma * (1.0 - batch.done)[None] * q_next
        q = self.critic.q_values(batch.state, batch.obs, batch.actions)  # [C, N, b]
        critic_loss = ((q - y[None]) ** 2).mean(dim=-1).sum()
        self.critic_opt.zero_grad()
        critic_loss.backward()
        self.critic_opt.step()
        self.n_updates += 1
        losses = {"critic_loss": critic_loss.item() / (cfg.n_critics * n)}
        if self.n_updates % cfg.policy_delay == 0:
            losses["actor_loss"] = self._update_actors(batch)
            polyak_update(self.actor_target, self.actor, cfg.tau)
            polyak_update(self.critic_target, self.critic, cfg.tau)
        return losses

    def _update_actors(self, batch: Batch) -> float:
        """Each actor ascends its first critic, its own action from the current policy."""
        pi = team_actions([p[None] for p in self.actor.params()], batch.obs)  # [b, N, A]
        q1 = self.critic.q1_own_action(batch.state, batch.obs, batch.actions, pi)  # [N, b]
        actor_loss = -q1.mean(dim=-1).sum()
        self.actor_opt.zero_grad()
        actor_loss.backward(inputs=list(self.actor.parameters()))  # no critic gradients
        self.actor_opt.step()
        return actor_loss.item() / self.n_agents

    # --- checkpoints -----------------------------------------------------------------------
    def state_dict(self, *, include_buffer: bool) -> dict[str, Any]:
        """Networks, optimisers, update count, generator state and (optionally) the buffer."""
        state: dict[str, Any] = {
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "actor_target": self.actor_target.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            "actor_opt": self.actor_opt.state_dict(),
            "critic_opt": self.critic_opt.state_dict(),
            "n_updates": self.n_updates,
            "generator": self.generator.get_state(),
        }
        if include_buffer:
            state["buffer"] = self.buffer.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.actor_target.load_state_dict(state["actor_target"])
        self.critic_target.load_state_dict(state["critic_target"])
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.critic_opt.load_state_dict(state["critic_opt"])
        self.n_updates = int(state["n_updates"])
        self.generator.set_state(state["generator"])
        if "buffer" in state:
            self.buffer.load_state_dict(state["buffer"])


def make_actors(
    lead: tuple[int, ...], dims: EnvDims, config: MATD3Config, generator: torch.Generator
) -> StackedMLP:
    """Actors (``lead``: prosumers, or teams x prosumers) with the last layer's initial
    weights scaled by ``config.actor_output_init``."""
    sizes = (dims.obs_dim, *config.actor_hidden, dims.action_dim)
    actors = StackedMLP(lead, sizes, tanh_output=True, generator=generator)
    with torch.no_grad():
        actors.weights[-1].mul_(config.actor_output_init)
        actors.biases[-1].mul_(config.actor_output_init)
    return actors


def make_critics(
    dims: EnvDims, config: MATD3Config, generator: torch.Generator
) -> SharedTrunkCritics | SeparateCritics:
    """The critics ``config`` asks for (a shared trunk only for centralised critics)."""
    if config.centralised and config.critic_trunk > 0:
        return SharedTrunkCritics(
            dims, config.n_critics, config.critic_trunk, config.critic_hidden, generator
        )
    return SeparateCritics(
        dims, config.n_critics, config.critic_hidden, config.centralised, generator
    )


def episode_metrics(stats: EpisodeStats) -> dict[str, float]:
    """Metrics of an exploring episode: mean world return and action coverage."""
    return {"episode_return": float(stats.world_returns.mean()), "coverage": stats.coverage}
