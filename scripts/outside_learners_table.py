"""The table of BenchMARL's learners (``p2pvar train-outside`` runs) for
docs/results/algorithms.md: the exported team's cost on the validation days per learner,
mean and std over the seeds that finished, beside the ToU rule and the one-day references
of ``study algorithms`` (on the same validation days).

Reads ``RUNS/<algo>-s<seed>/summary.json`` and ``metrics.csv``; writes one row per run to
docs/results/algorithms-outside.csv and prints the markdown table. Run:
``python scripts/outside_learners_table.py runs/outside``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from analysis.compare import gap_closed, share_of_optimum_savings

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"
ALGOS = ("mappo", "ippo", "maddpg", "masac")


def run_rows(runs: Path, refs: pd.Series) -> pd.DataFrame:
    """One row per finished run: validation cost, ToU, shares, curve and wall time."""
    rows = []
    for path in sorted(runs.glob("*-s*/summary.json")):
        s = json.loads(path.read_text())
        days = s["validation"]
        cost, tou = days["policy"]["cost_eur"], days["tou"]["cost_eur"]
        rows.append(
            {
                "algo": s["algo"],
                "seed": s["seed"],
                "env_steps": s["env_steps"],
                "updates_per_rollout": s["learner"]["updates_per_rollout"],
                "train_wall_s": s["train_wall_s"],
                "cost_eur": cost,
                "tou_cost_eur": tou,
                "rule_cost_eur": days["rule"]["cost_eur"],
                "dso_net_eur": days["policy"]["dso_net_eur"],
                "voltage_violations": days["policy"]["voltage_violations"],
                "vs_tou_eur": cost - tou,
                "share_of_optimum": share_of_optimum_savings(
                    refs["grid-only_cost_eur"], cost, refs["optimum_cost_eur"]
                ),
                "share_of_tou_gap": gap_closed(tou, cost, refs["optimum_cost_eur"]),
                **s["curve"],
            }
        )
    return pd.DataFrame(rows)


def mean_std(values: pd.Series, fmt: str) -> str:
    """``mean ± std`` (n - 1) over seeds; the value alone for one seed."""
    if len(values) == 1:
        return f"{values.iloc[0]:{fmt}} (one seed)"
    return f"{values.mean():{fmt}} ± {values.std():{fmt}}"


def main(runs: Path) -> None:
    refs = pd.read_csv(RESULTS / "algorithms-references.csv").iloc[0]
    frame = run_rows(runs, refs)
    frame.to_csv(RESULTS / "algorithms-outside.csv", index=False)
    print(
        "| algorithm | seeds | validation cost, EUR (mean ± std) | vs ToU | share of the optimum "
        "| share of the ToU-to-optimum gap | training s | val cost first → best → last |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for algo in ALGOS:
        g = frame[frame.algo == algo]
        if g.empty:
            continue
        print(
            f"| BenchMARL {algo} | {len(g)} ({', '.join(map(str, g.seed))}) "
            f"| {mean_std(g['cost_eur'], ',.1f')} | {g.vs_tou_eur.mean():+,.1f} "
            f"| {mean_std(g['share_of_optimum'], '.4f')} "
            f"| {mean_std(g['share_of_tou_gap'], '.4f')} "
            f"| {g.train_wall_s.mean():.0f} | {g.val_cost_first.mean():.2f} → "
            f"{g.val_cost_best.mean():.2f} → {g.val_cost_last.mean():.2f} |"
        )
    project = pd.read_csv(RESULTS / "algorithms.csv")
    for algo, g in project.groupby("algo", sort=False):
        gap = gap_closed(g.tou_cost_eur, g.cost_eur, g.optimum_cost_eur)
        print(
            f"| {algo} (the project's, `study algorithms`) | {len(g)} "
            f"| {mean_std(g['cost_eur'], ',.1f')} "
            f"| {(g.cost_eur - g.tou_cost_eur).mean():+,.1f} "
            f"| {mean_std(g['share_of_optimum'], '.4f')} | {mean_std(pd.Series(gap), '.4f')} "
            f"| {g.train_wall_s.mean():.0f} | {g.val_cost_first.mean():.2f} → "
            f"{g.val_cost_best.mean():.2f} → {g.val_cost_last.mean():.2f} |"
        )
    print(
        f"ToU in the runs: {sorted(set(frame.tou_cost_eur.round(2)))}; "
        f"references: ToU {refs['tou_cost_eur']:.2f}, grid-only {refs['grid-only_cost_eur']:.2f}, "
        f"optimum {refs['optimum_cost_eur']:.2f}"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
