"""BenchMARL's learners on the market (``p2pvar train-outside``, the ``torchrl`` extra).

The run mirrors ``p2pvar train``: the same environment (:func:`abm.training.train_run.make_env`
of a :class:`TrainRunConfig`: market, residual on the ToU rule, training days), the same
environment-step budget (``iterations`` rollouts of ``worlds`` one-day worlds: BenchMARL
collects ``worlds x 24`` frames an iteration), the held-out cost every ``eval_every``
iterations (:func:`agents.learning.rollout.evaluate_cost`) and at the end the same
``summary.json`` figures (:func:`abm.training.run_summary.held_out_results`). Of the run's
fields, those of :func:`run_setup` apply (``updates_per_rollout``: optimiser steps per
iteration, below). The
deterministic policy (BenchMARL's shared actor MLP, with ReLU hidden layers so it fits the
actor file format) is exported as the project's torch-free actor files, which
``p2pvar evaluate`` and ``--policy checkpoint:DIR`` play.

BenchMARL's defaults are kept (its ``base_experiment.yaml`` and algorithm yamls) except: the
budget above, CSV logging only, no BenchMARL evaluation (the held-out days are evaluated
here), ReLU actor layers and about ``updates_per_rollout`` optimiser steps per iteration
(``p2pvar train``'s 50; BenchMARL's defaults are 1000 for the off-policy learners and
45 epochs of minibatches for PPO, 135 steps here): the off-policy learners take exactly
that many, PPO that many rounded up to whole epochs over the iteration's minibatches.
"""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from benchmarl.algorithms import IppoConfig, MaddpgConfig, MappoConfig, MasacConfig
from benchmarl.experiment import Callback, Experiment, ExperimentConfig
from benchmarl.models.mlp import MlpConfig
from torch import nn
from torchrl.modules import MultiAgentMLP

from abm.envs.benchmarl_task import market_task
from abm.envs.torchrl_env import GROUP
from abm.errors import ConfigError
from abm.output.jsonfile import write_json
from abm.output.provenance import to_jsonable, write_run_config
from abm.training.run_summary import held_out_results
from abm.training.train_config import OutsideAlgo, TrainRunConfig
from abm.training.train_run import make_env
from agents.interval import EPISODE_INTERVALS
from agents.learning.checkpoint import RunIdentity, export_actors
from agents.learning.rollout import evaluate_cost

if TYPE_CHECKING:
    from benchmarl.algorithms.common import AlgorithmConfig

    from agents.learning.networks import Params


_CONFIGS: dict[OutsideAlgo, type[AlgorithmConfig]] = {
    OutsideAlgo.MAPPO: MappoConfig,
    OutsideAlgo.IPPO: IppoConfig,
    OutsideAlgo.MADDPG: MaddpgConfig,
    OutsideAlgo.MASAC: MasacConfig,
}
#: The fields of a :class:`TrainRunConfig` a BenchMARL run uses.
RUN_FIELDS = (
    "network", "market", "scenario", "base_policy", "residual_scale", "seed", "worlds",
    "iterations", "eval_every", "train_days", "eval_days", "updates_per_rollout",
)  # fmt: skip
#: Optimiser steps per iteration (``p2pvar train``'s default).
UPDATES_PER_ROLLOUT = 50


def experiment_config(run: TrainRunConfig, out_dir: Path, updates: int) -> ExperimentConfig:
    """BenchMARL's default experiment with ``run``'s budget (see the module docstring)."""
    config = ExperimentConfig.get_from_yaml()
    frames = run.worlds * EPISODE_INTERVALS
    config.on_policy_collected_frames_per_batch = frames
    config.off_policy_collected_frames_per_batch = frames
    config.on_policy_n_envs_per_worker = run.worlds
    config.off_policy_n_envs_per_worker = run.worlds
    config.max_n_frames = frames * run.iterations
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


class HeldOutCallback(Callback):
    """Every ``eval_every`` iterations: the held-out cost per day of the current
    deterministic policy (as ``p2pvar train``'s ``eval_cost``) and the iteration's figures,
    one row each (``metrics.csv``)."""

    def __init__(self, run: TrainRunConfig, group: str) -> None:
        super().__init__()
        self.run, self.group = run, group
        self.eval_env = make_env(run)
        self.rows: list[dict[str, float]] = []
        self._t0 = time.perf_counter()

    def on_train_end(self, training_td: Any, group: str) -> None:
        iteration = self.experiment.n_iters_performed + 1
        row: dict[str, float] = {
            "iteration": iteration,
            "env_steps": iteration * self.run.worlds * EPISODE_INTERVALS,
            "mean_return": float(self.experiment.mean_return),
        }
        if iteration % self.run.eval_every == 0 or iteration == self.run.iterations:
            team = actor_team(self.experiment, self.group)
            row["eval_cost"] = evaluate_cost(self.eval_env, team, self.eval_env.test_days, 0)
        row["wall_s"] = time.perf_counter() - self._t0
        self._t0 = time.perf_counter()
        self.rows.append(row)


def make_experiment(
    algo: OutsideAlgo | str, run: TrainRunConfig, out_dir: Path, callbacks: list[Callback]
) -> Experiment:
    """BenchMARL's experiment of ``algo`` on ``run``'s market (ReLU actor, BenchMARL's
    default critic MLP, :func:`experiment_config`), logging into ``out_dir``."""
    torch.manual_seed(run.seed)
    updates = run.updates_per_rollout or UPDATES_PER_ROLLOUT
    actor_model = MlpConfig(num_cells=[256, 256], layer_class=nn.Linear, activation_class=nn.ReLU)
    return Experiment(
        task=market_task(run),
        algorithm_config=_CONFIGS[OutsideAlgo(algo)].get_from_yaml(),
        model_config=actor_model,
        critic_model_config=MlpConfig.get_from_yaml(),
        seed=run.seed,
        config=experiment_config(run, out_dir, updates),
        callbacks=callbacks,
    )


def train_outside(
    algo: OutsideAlgo | str,
    run: TrainRunConfig,
    out_dir: Path,
    *,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Train BenchMARL's ``algo`` on ``run``'s market into ``out_dir`` (BenchMARL's CSV logs,
    ``metrics.csv``, ``actors/``, ``config.json``, ``summary.json``); return the summary."""
    from abm.output.out_dir import prepare_out_dir

    algo = OutsideAlgo(algo)
    updates_per_rollout = run.updates_per_rollout or UPDATES_PER_ROLLOUT
    prepare_out_dir(out_dir, overwrite)
    setup = run_setup(run)
    write_run_config(
        out_dir,
        setup,
        run.seed,
        command="train-outside",
        algo=str(algo),
        updates=updates_per_rollout,
    )
    callback = HeldOutCallback(run, GROUP)
    experiment = make_experiment(algo, run, out_dir, [callback])
    start = time.perf_counter()
    experiment.run()
    train_wall_s = time.perf_counter() - start
    team = actor_team(experiment, GROUP)
    export_actors(out_dir / "actors", team, RunIdentity.of(str(algo), callback.eval_env))
    _write_rows(out_dir / "metrics.csv", callback.rows)
    evals = [(int(r["iteration"]), r["eval_cost"]) for r in callback.rows if "eval_cost" in r]
    best = min(evals, key=lambda e: e[1])
    summary = {
        "algo": str(algo),
        "seed": run.seed,
        "setup": setup,
        "updates_per_rollout": updates_per_rollout,
        "env_steps": int(experiment.total_frames),
        "train_wall_s": train_wall_s,
        "curve": {
            "eval_cost_first": evals[0][1],
            "eval_cost_best": best[1],
            "eval_cost_best_iteration": best[0],
            "eval_cost_last": evals[-1][1],
        },
        **held_out_results(run, team),
    }
    write_json(out_dir / "summary.json", summary)
    return summary


def run_setup(run: TrainRunConfig) -> dict[str, Any]:
    """The fields of ``run`` a BenchMARL run uses (market, residual, seed, budget, days)."""
    return {name: to_jsonable(getattr(run, name)) for name in RUN_FIELDS}


def _write_rows(path: Path, rows: list[dict[str, float]]) -> None:
    names = list(dict.fromkeys(key for row in rows for key in row))
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=names)
        writer.writeheader()
        writer.writerows(rows)
