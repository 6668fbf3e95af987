"""The summary of a training run (``summary.json``): the held-out results of the trained
team beside the rule and ToU baselines on every held-out day (prosumer cost, DSO net,
voltage violations), the learning curve in a few numbers and the run's settings.

All held-out results come from one batched environment with a world per held-out day (the
run's ``--eval-days``), each day a one-day episode from the initial battery state.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from abm.envs.train_env import make_env
from abm.envs.vec_env import MarketVecEnv
from abm.inputs.profiles import TEST_DAYS
from abm.output.jsonfile import write_json
from abm.output.provenance import to_jsonable
from abm.training.train_config import TrainRunConfig, spread_days
from dso.powerflow import VM_MAX_PU, VM_MIN_PU

if TYPE_CHECKING:
    from agents.learners import LearnerConfig
    from agents.learning.networks import Params


def write_summary(
    out_dir: Path,
    config: TrainRunConfig,
    learner: LearnerConfig,
    rows: Sequence[dict[str, float]],
    team: Params,
) -> dict[str, Any]:
    """Write and return ``out_dir/summary.json`` of the run of ``config`` whose metrics rows
    are ``rows`` and trained team ``team``."""
    summary = {
        "algo": str(config.algo),
        "seed": config.seed,
        "setup": to_jsonable(config),
        "learner": to_jsonable(learner),
        "env_steps": int(rows[-1]["env_steps"]),
        "train_wall_s": sum(row["wall_s"] for row in rows),
        "load_average_1min": os.getloadavg()[0],
        "curve": curve_summary(rows),
        **held_out_results(config, team),
    }
    write_json(Path(out_dir) / "summary.json", summary)
    return summary


def held_out_results(config: TrainRunConfig, team: Params) -> dict[str, Any]:
    """Totals over the held-out days of ``config`` for ``team`` (acting in the run's
    environment, residual or not) and for the rule and ToU baselines."""
    import torch

    from agents.learning.rollout import team_actions

    days = len(spread_days(TEST_DAYS, config.eval_days))
    plain = make_env(dataclasses.replace(config, worlds=days, base_policy=""))
    env = make_env(dataclasses.replace(config, worlds=days)) if config.base_policy else plain
    return {
        "policy": play_test_days(env, lambda obs: team_actions(team, torch.from_numpy(obs))),
        "rule": play_test_days(plain, lambda _obs: plain.baseline_actions("rule")),
        "tou": play_test_days(plain, lambda _obs: plain.baseline_actions("tou")),
    }


def play_test_days(env: MarketVecEnv, act: Callable[[np.ndarray], Any]) -> dict[str, float]:
    """Play every test day of ``env`` (one world each) with ``act``: total prosumer cost
    (EUR), DSO net (EUR) and bus-interval voltage violations, summed over the days."""
    obs, _ = env.reset(0, list(env.test_days))
    cost = dso_net = 0.0
    violations = 0
    done = False
    while not done:
        obs, _, rewards, done_worlds, info = env.step(np.asarray(act(obs)))
        cost -= float(rewards.sum())
        dso_net += float(info["dso_net_eur"].sum())
        vm = info["vm_pu"]
        violations += int(((vm < VM_MIN_PU) | (vm > VM_MAX_PU)).sum())
        done = bool(done_worlds.all())
    return {"cost_eur": cost, "dso_net_eur": dso_net, "voltage_violations": violations}


def curve_summary(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    """The learning curve in a few numbers: held-out cost at the first, best and last
    evaluation, and the mean coverage (the project's learners) and (EA-MATD3) diversity
    over the run."""
    evals = [(int(r["iteration"]), r["eval_cost"]) for r in rows if "eval_cost" in r]
    best = min(evals, key=lambda e: e[1])
    out = {
        "eval_cost_first": evals[0][1],
        "eval_cost_best": best[1],
        "eval_cost_best_iteration": best[0],
        "eval_cost_last": evals[-1][1],
    }
    coverage = [r["coverage"] for r in rows if "coverage" in r]
    if coverage:
        out["coverage_mean"] = float(np.mean(coverage))
    diversity = [r["diversity"] for r in rows if "diversity" in r]
    if diversity:
        out["diversity_mean"] = float(np.mean(diversity))
        out["diversity_last"] = diversity[-1]
    return out
