"""The summary of a training run (``summary.json``): the exported team's results beside the
rule and ToU baselines on the validation days (prosumer cost, DSO net, voltage violations),
and, only when the run asks for it (``--test``), on the test days; the learning curve in a
few numbers and the run's settings.

Every result comes from one batched environment with a world per day, each day a one-day
episode from the initial battery state. The validation results come from the training
environment, which holds no test day; the test days are played by an environment built for
that final evaluation alone.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from abm.config import DaySet
from abm.envs.train_env import make_env
from abm.envs.vec_env import MarketVecEnv
from abm.output.jsonfile import write_json
from abm.output.provenance import to_jsonable
from abm.training.train_config import TrainRunConfig, played_days
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
        "validation": day_results(config, team, test=False),
    }
    if config.test_days:
        summary["test"] = day_results(config, team, test=True)
    write_json(Path(out_dir) / "summary.json", summary)
    return summary


def day_results(config: TrainRunConfig, team: Params, *, test: bool) -> dict[str, Any]:
    """Totals and per-day costs over the validation days of ``config`` (``test``: its test
    days) for ``team`` (acting in the run's environment, residual or not) and for the rule
    and ToU baselines."""
    import torch

    from agents.learning.rollout import team_actions

    days = played_days(config)[DaySet.TEST if test else DaySet.VALIDATION]
    sized = dataclasses.replace(config, worlds=len(days))
    plain = make_env(dataclasses.replace(sized, base_policy=""), test_days=test)
    env = make_env(sized, test_days=test) if config.base_policy else plain
    if config.base_policy:
        env.cache = plain.cache
    return {
        "days": len(days),
        "policy": play_days(env, days, lambda obs: team_actions(team, torch.from_numpy(obs))),
        "rule": play_days(plain, days, lambda _obs: plain.baseline_actions("rule")),
        "tou": play_days(plain, days, lambda _obs: plain.baseline_actions("tou")),
    }


def play_days(
    env: MarketVecEnv, days: Sequence[int], act: Callable[[np.ndarray], Any]
) -> dict[str, Any]:
    """Play ``days`` in ``env`` (one world each) with ``act``: prosumer cost (EUR) in total
    and per day, DSO net (EUR) in total and its lowest interval (summed over the worlds), and
    bus-interval voltage violations, summed over the days."""
    obs, _ = env.reset(0, list(days))
    cost_per_day = np.zeros(len(days))
    dso_net = 0.0
    dso_net_min = np.inf
    violations = 0
    done = False
    while not done:
        obs, _, rewards, done_worlds, info = env.step(np.asarray(act(obs)))
        cost_per_day -= rewards.sum(axis=1)
        dso_net += float(info["dso_net_eur"].sum())
        dso_net_min = min(dso_net_min, float(info["dso_net_eur"].min()))
        vm = info["vm_pu"]
        violations += int(((vm < VM_MIN_PU) | (vm > VM_MAX_PU)).sum())
        done = bool(done_worlds.all())
    return {
        "cost_eur": float(cost_per_day.sum()),
        "cost_eur_per_day": [float(c) for c in cost_per_day],
        "dso_net_eur": dso_net,
        "dso_net_min_interval_eur": dso_net_min,
        "voltage_violations": violations,
    }


def curve_summary(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    """The learning curve in a few numbers: validation cost at the first, best (the exported
    team's) and last evaluation, and the mean coverage (the project's learners) and (EA-MATD3)
    diversity over the run."""
    evals = [(int(r["iteration"]), r["val_cost"]) for r in rows if "val_cost" in r]
    best = min(evals, key=lambda e: e[1])
    out = {
        "val_cost_first": evals[0][1],
        "val_cost_best": best[1],
        "val_cost_best_iteration": best[0],
        "val_cost_last": evals[-1][1],
    }
    coverage = [r["coverage"] for r in rows if "coverage" in r]
    if coverage:
        out["coverage_mean"] = float(np.mean(coverage))
    diversity = [r["diversity"] for r in rows if "diversity" in r]
    if diversity:
        out["diversity_mean"] = float(np.mean(diversity))
        out["diversity_last"] = diversity[-1]
    return out
