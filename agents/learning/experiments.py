"""Training runs on the market and their held-out results: the default budget, one run,
and the comparison of the learners over seeds (``docs/ea-matd3.md``, results in
``docs/results/algorithms.md``).

    python -m agents.learning.experiments run --algo ea-matd3 --seed 0 --out runs/ea0
    python -m agents.learning.experiments compare --seeds 0 1 2 --out runs/compare --jobs 2

A run trains on :class:`abm.training.vec_env.MarketVecEnv` with the learners' defaults
(:data:`DEFAULT_SETUP`: a residual policy on the time-of-use rule), exports the actors and
writes ``summary.json``: the held-out cost of the exported team on every test day (with
the DSO's net and the voltage violations), and of the rule and ToU baselines on the same
days, all from one batched environment with a world per test day.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from abm.config import Market, PolicyName, SimConfig
from abm.training.vec_env import MarketVecEnv
from agents.learning.ea_matd3 import EAMATD3Config
from agents.learning.matd3 import MATD3Config
from agents.learning.networks import Params
from agents.learning.rollout import team_actions
from agents.learning.train import ALGORITHMS, TrainConfig, make_algorithm, train

#: Voltage band of a violation (as ``analysis.tables``: buses outside it count).
VM_BAND_PU = (0.95, 1.05)
#: This module, as `python -m` runs it (the comparison starts one process per run).
MODULE = "agents.learning.experiments"


@dataclass(frozen=True)
class TrainingSetup:
    """The environment and budget of a training run (the learners' settings are their
    configs' defaults)."""

    network: str = "ieee33"
    market: Market = Market.MULTI
    n_worlds: int = 44
    """Worlds of the training environment (EA-MATD3: ``(population + 1)`` blocks)."""
    base_policy: str = PolicyName.TOU
    """The actors correct this baseline's actions (residual policy learning)."""
    residual_scale: float = 0.1
    """Weight of the actors' outputs added to the base action."""
    iterations: int = 30
    """Rollouts (EA-MATD3: generations)."""
    eval_every: int = 10

    def env(self, n_worlds: int | None = None) -> MarketVecEnv:
        """The training (or, with ``n_worlds``, evaluation) environment."""
        return MarketVecEnv(
            n_worlds or self.n_worlds,
            SimConfig(network=self.network, market=self.market),
            base_policy=self.base_policy,
            residual_scale=self.residual_scale,
        )


DEFAULT_SETUP = TrainingSetup()


def run(
    algo: str,
    seed: int,
    out_dir: Path,
    setup: TrainingSetup = DEFAULT_SETUP,
    learner: dict[str, Any] | None = None,
) -> dict:
    """Train ``algo`` with ``seed`` (``learner``: MATD3 settings replacing the defaults);
    write and return ``summary.json``."""
    torch.set_num_threads(1)
    out_dir = Path(out_dir)
    env = setup.env()
    algorithm = make_algorithm(algo, env, seed, learner_config(algo, learner or {}))
    config = TrainConfig(
        iterations=setup.iterations,
        eval_every=setup.eval_every,
        checkpoint_every=setup.eval_every,
        checkpoint_buffer=False,
        progress=False,
    )
    start = time.perf_counter()
    rows = train(algorithm, env, config, out_dir)
    train_s = time.perf_counter() - start
    held_out = held_out_results(setup, algorithm.policy_team())
    summary = {
        "algo": algo,
        "seed": seed,
        "setup": dataclasses.asdict(setup),
        "learner": _config_dict(algorithm),
        "train_wall_s": train_s,
        "load_average_1min": os.getloadavg()[0],
        "curve": curve_summary(rows),
        **held_out,
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def held_out_results(setup: TrainingSetup, team: Params) -> dict[str, Any]:
    """Totals over every test day for ``team`` and for the rule and ToU baselines."""
    env = setup.env(len(MarketVecEnv.test_days))
    plain = dataclasses.replace(setup, base_policy="").env(len(MarketVecEnv.test_days))
    return {
        "policy": play_test_days(env, lambda obs: team_actions(team, torch.from_numpy(obs))),
        "rule": play_test_days(plain, lambda _obs: plain.baseline_actions(PolicyName.RULE)),
        "tou": play_test_days(plain, lambda _obs: plain.baseline_actions(PolicyName.TOU)),
    }


def play_test_days(env: MarketVecEnv, act: Callable[[np.ndarray], Any]) -> dict[str, float]:
    """Play every test day (one world each) with ``act``: total prosumer cost (EUR), DSO
    net (EUR) and bus-interval voltage violations, summed over the days."""
    obs, _ = env.reset(0, list(env.test_days))
    cost = dso_net = 0.0
    violations = 0
    done = False
    while not done:
        obs, _, rewards, done_worlds, info = env.step(np.asarray(act(obs)))
        cost -= float(rewards.sum())
        dso_net += float(info["dso_net_eur"].sum())
        vm = info["vm_pu"]
        violations += int(((vm < VM_BAND_PU[0]) | (vm > VM_BAND_PU[1])).sum())
        done = bool(done_worlds.all())
    return {"cost_eur": cost, "dso_net_eur": dso_net, "voltage_violations": violations}


def curve_summary(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    """The learning curve in a few numbers: held-out cost at the first, best and last
    evaluation, and the mean coverage and (EA-MATD3) diversity over the run."""
    evals = [(int(r["iteration"]), r["eval_cost"]) for r in rows if "eval_cost" in r]
    best = min(evals, key=lambda e: e[1])
    out = {
        "eval_cost_first": evals[0][1],
        "eval_cost_best": best[1],
        "eval_cost_best_iteration": best[0],
        "eval_cost_last": evals[-1][1],
        "coverage_mean": float(np.mean([r["coverage"] for r in rows])),
    }
    diversity = [r["diversity"] for r in rows if "diversity" in r]
    if diversity:
        out["diversity_mean"] = float(np.mean(diversity))
        out["diversity_last"] = diversity[-1]
    return out


def learner_config(algo: str, learner: dict[str, Any]) -> MATD3Config | EAMATD3Config:
    """The default config of ``algo`` with the MATD3 settings ``learner`` replaced."""
    matd3 = dataclasses.replace(MATD3Config(), **learner)
    return EAMATD3Config(learner=matd3) if algo == "ea-matd3" else matd3


def _config_dict(algorithm: Any) -> dict[str, Any]:
    config = getattr(algorithm, "config", None)
    return dataclasses.asdict(config) if isinstance(config, MATD3Config | EAMATD3Config) else {}


def compare(
    algos: Sequence[str], seeds: Sequence[int], out_dir: Path, jobs: int, run_args: list[str]
) -> None:
    """Every ``algo`` x ``seed`` run (``run_args``: more ``run`` options), ``jobs`` processes
    at a time (one torch thread each); runs whose ``summary.json`` exists are skipped."""
    pending = [
        (a, s) for s in seeds for a in algos if not (out_dir / f"{a}-s{s}/summary.json").exists()
    ]
    env_vars = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    running: list[subprocess.Popen] = []
    while pending or running:
        while pending and len(running) < jobs:
            algo, seed = pending.pop(0)
            run_dir = out_dir / f"{algo}-s{seed}"
            run_dir.mkdir(parents=True, exist_ok=True)
            cmd = [sys.executable, "-m", MODULE, "run", "--algo", algo, "--seed", str(seed)]
            cmd += run_args
            with (run_dir / "log.txt").open("w") as log:
                running.append(
                    subprocess.Popen(
                        [*cmd, "--out", str(run_dir)], stdout=log, stderr=log, env=env_vars
                    )
                )
        time.sleep(2)
        running = [p for p in running if p.poll() is None]


#: Columns of the comparison table (one row per run in the CSV).
TABLE_COLUMNS = (
    "algo",
    "seed",
    "iterations",
    "train_wall_s",
    "cost_eur",
    "tou_cost_eur",
    "rule_cost_eur",
    "dso_net_eur",
    "voltage_violations",
    "eval_cost_first",
    "eval_cost_best",
    "eval_cost_last",
    "coverage_mean",
    "diversity_mean",
)


def table_rows(runs_dir: Path) -> list[dict[str, Any]]:
    """One row per ``*/summary.json`` under ``runs_dir`` (sorted by algorithm and seed)."""
    rows = []
    for path in sorted(Path(runs_dir).glob("*/summary.json")):
        s = json.loads(path.read_text())
        rows.append(
            {
                "algo": s["algo"],
                "seed": s["seed"],
                "iterations": s["setup"]["iterations"],
                "train_wall_s": s["train_wall_s"],
                "cost_eur": s["policy"]["cost_eur"],
                "tou_cost_eur": s["tou"]["cost_eur"],
                "rule_cost_eur": s["rule"]["cost_eur"],
                "dso_net_eur": s["policy"]["dso_net_eur"],
                "voltage_violations": s["policy"]["voltage_violations"],
                **{k: s["curve"].get(k, "") for k in TABLE_COLUMNS[9:]},
            }
        )
    return sorted(rows, key=lambda r: (r["algo"], r["seed"]))


def write_table(runs_dir: Path, csv_path: Path, md_path: Path) -> None:
    """The per-run CSV and a markdown table of each algorithm's mean and spread."""
    rows = table_rows(runs_dir)
    with Path(csv_path).open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=TABLE_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        "| algorithm | seeds | held-out cost, EUR (mean ± std) | min - max | vs ToU | "
        "training s | eval cost first → best → last (EUR/day) | coverage | diversity |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for algo in sorted({r["algo"] for r in rows}):
        group = [r for r in rows if r["algo"] == algo]
        cost = np.array([r["cost_eur"] for r in group])
        tou = np.array([r["tou_cost_eur"] for r in group])

        def mean(key: str, rows: list[dict[str, Any]] = group) -> float:
            return float(np.mean([r[key] for r in rows]))

        diversity = [r["diversity_mean"] for r in group if r["diversity_mean"] != ""]
        spread = cost.std(ddof=1) if len(cost) > 1 else 0.0
        lines.append(
            f"| {algo} | {len(group)} | {cost.mean():,.1f} ± {spread:,.1f} "
            f"| {cost.min():,.1f} - {cost.max():,.1f} | {(cost - tou).mean():+,.1f} "
            f"| {mean('train_wall_s'):.0f} | {mean('eval_cost_first'):.2f} → "
            f"{mean('eval_cost_best'):.2f} → {mean('eval_cost_last'):.2f} "
            f"| {mean('coverage_mean'):.4f} | "
            f"{f'{np.mean(diversity):.4f}' if diversity else '-'} |"
        )
    Path(md_path).write_text("\n".join(lines) + "\n")


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``run`` one training, or ``compare`` learners over seeds."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("run", help="train one learner and summarise it on the test days")
    one.add_argument("--algo", choices=sorted(ALGORITHMS), default="ea-matd3")
    one.add_argument("--seed", type=int, default=0)
    one.add_argument("--iterations", type=int, default=DEFAULT_SETUP.iterations)
    one.add_argument("--out", type=Path, required=True)
    one.add_argument("--learner", type=json.loads, default={}, help="MATD3 settings (JSON)")
    one.add_argument("--worlds", type=int, default=DEFAULT_SETUP.n_worlds)
    one.add_argument("--residual-scale", type=float, default=DEFAULT_SETUP.residual_scale)
    one.add_argument("--base-policy", default=DEFAULT_SETUP.base_policy)
    many = sub.add_parser("compare", help="every learner over several seeds")
    many.add_argument("--algos", nargs="+", default=sorted(ALGORITHMS))
    many.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    many.add_argument("--jobs", type=int, default=2)
    many.add_argument("--out", type=Path, required=True)
    many.add_argument("--iterations", type=int, default=DEFAULT_SETUP.iterations)
    many.add_argument("--learner", default="{}", help="MATD3 settings (JSON)")
    table = sub.add_parser("table", help="the comparison's CSV and markdown table")
    table.add_argument("runs", type=Path)
    table.add_argument("--csv", type=Path, required=True)
    table.add_argument("--md", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "table":
        write_table(args.runs, args.csv, args.md)
        return
    if args.command == "run":
        setup = dataclasses.replace(
            DEFAULT_SETUP,
            iterations=args.iterations,
            n_worlds=args.worlds,
            residual_scale=args.residual_scale,
            base_policy=args.base_policy,
        )
        summary = run(args.algo, args.seed, args.out, setup, args.learner)
        print(json.dumps({k: summary[k] for k in ("train_wall_s", "policy", "rule", "tou")}))
    else:
        run_args = ["--iterations", str(args.iterations), "--learner", args.learner]
        compare(args.algos, args.seeds, args.out, args.jobs, run_args)


if __name__ == "__main__":
    main()
