"""The comparison of the learners over seeds and its table (``docs/ea-matd3.md``, results in
``docs/results/algorithms.md``).

    python -m abm.training.experiments compare --seeds 0 1 2 --out runs/compare --jobs 2
    python -m abm.training.experiments table runs/compare --csv t.csv --md t.md

Every run of the comparison is ``run``: ``p2pvar train`` (same flags and defaults, the
default budget of ``docs/ea-matd3.md``, :func:`abm.training.train_run.train_run`) with one
torch thread, no progress bar and, with ``--learner JSON``, MATD3 settings beyond the
command's; its ``summary.json`` (:mod:`abm.training.run_summary`) is what the table reads.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from abm.cli_args import add_config_args, config_from_args
from abm.training.train_config import AlgoName, TrainRunConfig

#: This module, as `python -m` runs it (the comparison starts one process per run).
MODULE = "abm.training.experiments"


def compare(
    algos: Sequence[str], seeds: Sequence[int], out_dir: Path, jobs: int, run_args: list[str]
) -> None:
    """Every ``algo`` x ``seed`` run into ``out_dir/<algo>-s<seed>`` (``run_args``: more
    ``run`` options), ``jobs`` processes at a time (one torch thread each), each logging to
    ``out_dir/<algo>-s<seed>.log``; runs whose ``summary.json`` exists are skipped, an
    unfinished one starts again."""
    pending = [
        (a, s) for s in seeds for a in algos if not (out_dir / f"{a}-s{s}/summary.json").exists()
    ]
    env_vars = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    running: list[subprocess.Popen] = []
    while pending or running:
        while pending and len(running) < jobs:
            algo, seed = pending.pop(0)
            run_dir = out_dir / f"{algo}-s{seed}"
            out_dir.mkdir(parents=True, exist_ok=True)
            cmd = [sys.executable, "-m", MODULE, "run", "--algo", algo, "--seed", str(seed)]
            cmd += [*run_args, "--out", str(run_dir), "--overwrite"]
            with (out_dir / f"{algo}-s{seed}.log").open("w") as log:
                running.append(subprocess.Popen(cmd, stdout=log, stderr=log, env=env_vars))
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
    """Command line: ``run`` one training, ``compare`` learners over seeds, ``table``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("run", help="p2pvar train (one torch thread), --learner settings")
    add_config_args(one, TrainRunConfig)
    one.add_argument("--out", type=Path, required=True)
    one.add_argument("--overwrite", action="store_true", help="replace an earlier run's results")
    one.add_argument("--learner", type=json.loads, default={}, help="MATD3 settings (JSON)")
    many = sub.add_parser("compare", help="every learner over several seeds")
    many.add_argument("--algos", nargs="+", default=[str(a) for a in AlgoName])
    many.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    many.add_argument("--jobs", type=int, default=2)
    many.add_argument("--out", type=Path, required=True)
    many.add_argument("--iterations", type=int, default=TrainRunConfig.iterations)
    many.add_argument("--learner", default="{}", help="MATD3 settings (JSON)")
    table = sub.add_parser("table", help="the comparison's CSV and markdown table")
    table.add_argument("runs", type=Path)
    table.add_argument("--csv", type=Path, required=True)
    table.add_argument("--md", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "table":
        write_table(args.runs, args.csv, args.md)
    elif args.command == "run":
        import torch

        from abm.training.train_run import train_run

        torch.set_num_threads(1)
        config = config_from_args(TrainRunConfig, args)
        result = train_run(
            config, args.out, overwrite=args.overwrite, progress=False, matd3=args.learner
        )
        print(json.dumps(result))
    else:
        run_args = ["--iterations", str(args.iterations), "--learner", args.learner]
        run_args.append("--no-checkpoint-buffer")
        compare(args.algos, args.seeds, args.out, args.jobs, run_args)


if __name__ == "__main__":
    main()
