"""BenchMARL's training loop for a run of ``p2pvar train-outside`` (the ``torchrl`` extra):
:func:`train_outside` is :func:`abm.training.train_run.train_run` with :func:`train_benchmarl`.

The run mirrors ``p2pvar train`` (:class:`abm.training.outside.OutsideRunConfig`): the same
environment (:func:`abm.envs.train_env.make_env`: the market ``sim``, residual on the ToU
rule, episodes from the training days less validation, no test day held) through
:mod:`abm.envs.benchmarl_task`; the same environment-step budget
(:func:`abm.training.train_run.iterations_of`: ``iterations`` rollouts of ``worlds`` one-day
worlds, fewer if ``env_steps`` comes first; BenchMARL collects ``worlds x 24`` frames an
iteration); the validation cost every ``eval_every`` iterations and at the last
(:func:`agents.learning.rollout.evaluate_cost` on ``val_days``, ``p2pvar train``'s
``val_cost``), the team of the lowest validation cost exported, and the same
``summary.json`` (the test days only with ``test_days``, after training). The deterministic
policy (BenchMARL's shared actor MLP, with ReLU hidden layers so it fits the actor file
format) is exported as the project's torch-free actor files, which ``p2pvar evaluate`` and
``--policy checkpoint:DIR`` play.

BenchMARL's defaults are kept (its ``base_experiment.yaml`` and algorithm yamls) except: the
budget above, CSV logging only, no BenchMARL evaluation (the validation days are evaluated
here), ReLU actor layers and the optimiser steps per iteration of
:class:`abm.training.outside.OutsideLearnerConfig`.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from benchmarl.experiment import Callback, Experiment, ExperimentConfig
from benchmarl.models.mlp import MlpConfig
from torch import nn
from torchrl.modules import MultiAgentMLP

from abm.envs.benchmarl_task import market_task
from abm.envs.torchrl_env import GROUP
from abm.envs.train_env import make_env
from abm.errors import ConfigError
from abm.training.outside import OUTSIDE_LEARNERS, OutsideLearnerConfig, OutsideRunConfig
from abm.training.train_config import TrainRunConfig
from abm.training.train_run import iterations_of, train_run
from agents.interval import EPISODE_INTERVALS
from agents.learning.checkpoint import RunIdentity, Selected, export_actors
from agents.learning.rollout import evaluate_cost
from agents.learning.train import write_metrics
from agents.registry import load_address

if TYPE_CHECKING:
    from benchmarl.algorithms.common import AlgorithmConfig

    from agents.learners import LearnerConfig
    from agents.learning.networks import Params


def experiment_config(
    run: OutsideRunConfig, learner: OutsideLearnerConfig, out_dir: Path
) -> ExperimentConfig:
    """BenchMARL's default experiment with ``run``'s budget (see the module docstring)."""
    config = ExperimentConfig.get_from_yaml()
    frames = run.worlds * EPISODE_INTERVALS
    updates = learner.updates_per_rollout
    config.on_policy_collected_frames_per_batch = frames
    config.off_policy_collected_frames_per_batch = frames
    config.on_policy_n_envs_per_worker = run.worlds
    config.off_policy_n_envs_per_worker = run.worlds
    config.max_n_frames = frames * iterations_of(run)
    config.max_n_iters = None
    config.off_policy_n_optimizer_steps = updates
    config.on_policy_minibatch_size = min(config.on_policy_minibatch_size, frames)
    minibatches = math.ceil(frames / config.on_policy_minibatch_size)
    config.on_policy_n_minibatch_iters = math.ceil(updates / minibatches)
    config.evaluation = False
    config.evaluation_episodes = 1  # BenchMARL's test env: only its specs are used
    config.render = False
    config.loggers = ["csv"]
    config.create_json = False
    config.save_folder = str(out_dir)
    config.checkpoint_interval = 0
    config.checkpoint_at_end = False
    return config


def actor_team(experiment: Experiment, group: str) -> Params:
    """The deterministic policy of ``group`` as a team ``[1, N, ...]`` (weights ``(in, out)``
    and biases interleaved, the layout of :func:`export_actors`): the actor MLP's layers,
    the last one cut to the action (the location of a TanhNormal, a TanhDelta's parameter),
    so ``tanh`` of its output is BenchMARL's deterministic action."""
    policy = experiment.algorithm.get_policy_for_loss(group)
    mlps = [m for m in policy.modules() if isinstance(m, MultiAgentMLP)]
    if len(mlps) != 1:
        raise ConfigError(f"policy of {group!r}: expected one actor MLP, found {len(mlps)}")
    mlp = mlps[0]
    layers = list(mlp.get_stateful_net(copy=True))
    activations = {type(m) for m in layers if not isinstance(m, nn.Linear)}
    if activations != {nn.ReLU}:
        raise ConfigError(f"actor activations {activations}: the actor files need ReLU")
    n_agents = mlp.n_agents
    action_dim = experiment.action_spec[group, "action"].shape[-1]
    linear = [m for m in layers if isinstance(m, nn.Linear)]
    team: Params = []
    for k, layer in enumerate(linear):
        w, b = layer.weight.detach(), layer.bias.detach()
        if k == len(linear) - 1:
            w, b = w[..., :action_dim, :], b[..., :action_dim]
        w = w.transpose(-1, -2)
        if mlp.share_params:
            w, b = w.expand(n_agents, *w.shape), b.expand(n_agents, *b.shape)
        team += [w.unsqueeze(0).contiguous(), b.unsqueeze(0).contiguous()]
    return team


class ValidationCallback(Callback):
    """Every ``eval_every`` iterations and at the last: the validation cost per day of the
    current deterministic policy (``p2pvar train``'s ``val_cost``), and the team of the
    lowest so far (:attr:`selected`, the one exported); every iteration one row
    (``metrics.csv``) with its environment steps, the mean world return of its rollout and
    its wall time."""

    def __init__(self, run: OutsideRunConfig, group: str) -> None:
        super().__init__()
        self.run, self.group = run, group
        self.iterations = iterations_of(run)
        self.eval_env = make_env(run)
        self.rows: list[dict[str, float]] = []
        self.selected: Selected | None = None
        self._t0 = time.perf_counter()

    def on_train_end(self, training_td: Any, group: str) -> None:
        iteration = self.experiment.n_iters_performed + 1
        row: dict[str, float] = {
            "iteration": iteration,
            "env_steps": int(self.experiment.total_frames),  # BenchMARL's count so far
            # BenchMARL's mean return is per prosumer; a world's sums its prosumers'
            "episode_return": float(self.experiment.mean_return) * self.eval_env.n_agents,
        }
        if iteration % self.run.eval_every == 0 or iteration == self.iterations:
            team = actor_team(self.experiment, self.group)
            row["val_cost"] = evaluate_cost(self.eval_env, team, self.eval_env.val_days, 0)
            if self.selected is None or row["val_cost"] < self.selected.val_cost:
                self.selected = Selected(team, row["val_cost"], iteration)
        row["wall_s"] = time.perf_counter() - self._t0
        self._t0 = time.perf_counter()
        self.rows.append(row)


def make_experiment(
    run: OutsideRunConfig,
    learner: OutsideLearnerConfig,
    out_dir: Path,
    callbacks: list[Callback],
) -> Experiment:
    """BenchMARL's experiment of ``run.algo`` on ``run``'s market (ReLU actor, BenchMARL's
    default critic MLP, :func:`experiment_config`), logging into ``out_dir``."""
    torch.manual_seed(run.seed)
    algorithm: type[AlgorithmConfig] = load_address(  # type: ignore[assignment]
        OUTSIDE_LEARNERS[run.algo], ConfigError, f"algo={run.algo!r}"
    )
    actor_model = MlpConfig(num_cells=[256, 256], layer_class=nn.Linear, activation_class=nn.ReLU)
    return Experiment(
        task=market_task(run),
        algorithm_config=algorithm.get_from_yaml(),
        model_config=actor_model,
        critic_model_config=MlpConfig.get_from_yaml(),
        seed=run.seed,
        config=experiment_config(run, learner, out_dir),
        callbacks=callbacks,
    )


def train_benchmarl(
    config: TrainRunConfig,
    learner: LearnerConfig,
    out_dir: Path,
    *,
    resume: bool,
    progress: bool,
) -> tuple[list[dict[str, float]], Params]:
    """Train BenchMARL's ``config.algo`` into ``out_dir`` (BenchMARL's CSV logs,
    ``metrics.csv``, ``actors/``: the team of the lowest validation cost); return the metrics
    rows and that team (:class:`abm.training.train_run.Trainer`; no ``resume``, BenchMARL's
    own progress bar)."""
    if resume:
        raise ConfigError("--resume: a BenchMARL run cannot be resumed")
    if not isinstance(config, OutsideRunConfig) or not isinstance(learner, OutsideLearnerConfig):
        raise ConfigError(f"algo={config.algo!r} is not one of BenchMARL's learners")
    callback = ValidationCallback(config, GROUP)
    experiment = make_experiment(config, learner, out_dir, [callback])
    experiment.run()
    selected = callback.selected
    team = actor_team(experiment, GROUP) if selected is None else selected.team
    export_actors(out_dir / "actors", team, RunIdentity.of(config.algo, callback.eval_env))
    write_metrics(out_dir / "metrics.csv", callback.rows)
    return callback.rows, team


def train_outside(
    config: OutsideRunConfig, out_dir: Path, *, overwrite: bool = False, summary: bool = True
) -> dict[str, Any]:
    """The run ``p2pvar train-outside`` makes: ``p2pvar train``'s run
    (:func:`abm.training.train_run.train_run`) with BenchMARL's loop; the figures it prints."""
    return train_run(
        config,
        out_dir,
        overwrite=overwrite,
        summary=summary,
        trainer=train_benchmarl,
        command="train-outside",
    )
