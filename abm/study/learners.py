"""What the learner studies (``algorithms``, ``scalability``) share: one training run
(``p2pvar train``) per network, learner and seed through the executor, each playing its
exported team on the validation days and, after training, on the test days; the references
on the same days of both sets; and their tables and training curves.

The references are simulations the study makes, one per day of each day set (``--val-days``
and ``--test-days`` of the training runs spread over the year, each a one-day run from the
initial battery state, as the runs play them): ``grid-only`` with the rule policy (the
reference of the share of the optimum's savings, as in ``study markets``), the
perfect-foresight ``optimum`` (``docs/optimum.md``) and the decentralised forecast ``mpc``
(``docs/mpc.md``), both in the study's market. The optimum's in-process market counters give
the message volume per interval.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from abm.cli.args import add_config_args, config_from_args
from abm.config import Market, SimConfig
from abm.errors import ConfigError
from abm.inputs.profiles import TEST_DAYS
from abm.inputs.run_inputs import day_set_days
from abm.study.executor import RUN_FILE, RunSpec, run_dir_of
from abm.study.runs import choice_list, write_table
from abm.training.train_config import (
    LEARNER_SETTINGS,
    NOT_TRAINED,
    TrainRunConfig,
    played_days,
)
from agents.learners import LEARNERS, learner_settings

if TYPE_CHECKING:
    import pandas as pd

#: Fields of the training config set by the study's size (a flag given overrides them).
QUICK_BUDGET: dict[str, Any] = {
    "worlds": 11,
    "iterations": 2,
    "eval_every": 1,
    "checkpoint_every": 2,
    "train_days": 4,
    "val_days": 1,
    "learning_starts": 64,
    "batch_size": 32,
    "updates_per_rollout": 2,
    "test_days": 1,
}
#: The full size's budget beyond ``p2pvar train``'s defaults: every test day played.
FULL_BUDGET: dict[str, Any] = {"test_days": len(TEST_DAYS)}
#: Training flags the study sets itself (per run) or leaves out.
OWN_FIELDS = ("algo", "seed", "network")
#: The reference simulations of each day: label -> (market or None for the study's, policy).
REFERENCES: dict[str, tuple[Market | None, str]] = {
    "grid-only": (Market.GRID_ONLY, "rule"),
    "optimum": (None, "optimum"),
    "mpc": (None, "mpc"),
}
#: The network's size and message volume (``references``) in the scalability table.
MESSAGE_COLUMNS = (
    "n_prosumers",
    "messages_per_interval",
    "deliveries_per_interval",
    "bytes_per_interval",
)
#: The team's results on a day set copied from its ``summary.json`` to the per-run table.
RESULT_COLUMNS = ("dso_net_eur", "dso_net_min_interval_eur", "voltage_violations")
#: Columns of the per-run table read from each run's ``summary.json`` curve.
CURVE_COLUMNS = (
    "val_cost_first",
    "val_cost_best",
    "val_cost_last",
    "coverage_mean",
    "diversity_mean",
)


def add_args(parser: argparse.ArgumentParser, *, algos: str, seeds: str) -> None:
    """``--algos``, ``--seeds`` and the training flags (budget defaults by size)."""
    parser.add_argument(
        "--algos", default=algos, help=f"comma-separated: {', '.join(LEARNERS)} (default: {algos})"
    )
    parser.add_argument(
        "--seeds", default=seeds, help=f"comma-separated seeds, each >= 0 (default: {seeds})"
    )
    add_config_args(parser, TrainRunConfig, exclude=OWN_FIELDS)
    sized = {name: None for name in {**QUICK_BUDGET, **FULL_BUDGET}}
    parser.set_defaults(**sized, checkpoint_buffer=False)


def seed_list(text: str) -> list[int]:
    """Comma-separated seeds (integers >= 0, duplicates dropped); :class:`ConfigError`."""
    try:
        seeds = [int(t) for t in str(text).replace(" ", ",").split(",") if t.strip()]
    except ValueError:
        raise ConfigError(f"seeds={text!r} must be comma-separated integers >= 0") from None
    if not seeds or min(seeds) < 0:
        raise ConfigError(f"seeds={text!r} must be comma-separated integers >= 0")
    return list(dict.fromkeys(seeds))


def base_config(args: argparse.Namespace, full: dict[str, Any] | None = None) -> TrainRunConfig:
    """The training config of every run: the class defaults, then the size's budget
    (``--quick``: :data:`QUICK_BUDGET`; else :data:`FULL_BUDGET` updated with ``full``), then
    every flag given."""
    names = [f.name for f in dataclasses.fields(TrainRunConfig) if f.name not in OWN_FIELDS]
    given = {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}
    size = QUICK_BUDGET if args.quick else {**FULL_BUDGET, **(full or {})}
    sim = config_from_args(SimConfig, args, exclude={*NOT_TRAINED, *OWN_FIELDS})
    return TrainRunConfig(**{**size, **given, "sim": sim})


def _run_prefix(network: str, networks: Sequence[str]) -> str:
    """``<network>-`` before a run's name when the study has several networks."""
    return f"{network}-" if len(networks) > 1 else ""


def training_specs(
    base: TrainRunConfig, networks: Sequence[str], algos_text: str, seeds_text: str
) -> list[RunSpec]:
    """One training run per network, learner and seed (named ``<algo>-s<seed>``, prefixed
    with ``<network>-`` when there are several networks)."""
    algos = choice_list(LEARNERS, "algos", algos_text)
    seeds = seed_list(seeds_text)
    settings = {algo: learner_settings(algo) for algo in algos}  # imports the learners
    out = []
    for network in networks:
        prefix = _run_prefix(network, networks)
        for seed in seeds:  # seed-major: every learner's first seed finishes first
            for algo in algos:
                foreign: dict[str, Any] = {
                    n: None for n in LEARNER_SETTINGS if n not in settings[algo]
                }
                sim = dataclasses.replace(base.sim, network=network)
                config = dataclasses.replace(base, sim=sim, algo=algo, seed=seed, **foreign)
                labels = {"network": network, "algo": str(algo), "seed": seed}
                out.append(RunSpec(f"{prefix}{algo}-s{seed}", config, labels=labels))
    return out


def reference_specs(base: TrainRunConfig, networks: Sequence[str]) -> list[RunSpec]:
    """The reference simulations of every day of each day set of ``base`` on each network."""
    out = []
    for network in networks:
        prefix = _run_prefix(network, networks)
        for day_set, days in played_days(base).items():
            pool = day_set_days(day_set)
            for day in days:
                for label, (market, policy) in REFERENCES.items():
                    config = dataclasses.replace(
                        base.sim,
                        network=network,
                        market=market or base.sim.market,
                        policy=policy,
                        days=1,
                        day_set=day_set,
                        first_day=pool.index(day),
                    )
                    labels = {
                        "network": network,
                        "reference": label,
                        "day_set": str(day_set),
                        "day": day,
                    }
                    out.append(RunSpec(f"{prefix}{label}-d{day:03d}", config, labels=labels))
    return out


def is_training(spec: RunSpec) -> bool:
    """Whether ``spec`` is a training run (else a reference simulation)."""
    return isinstance(spec.config, TrainRunConfig)


# ---------------------------------------------------------------------------- analysis
def _summaries(
    out: Path, runs: Sequence[RunSpec]
) -> list[tuple[RunSpec, TrainRunConfig, dict[str, Any]]]:
    """Each training run with its config and its ``summary.json``."""
    return [
        (spec, spec.config, json.loads((run_dir_of(out, spec) / "summary.json").read_text()))
        for spec in runs
        if isinstance(spec.config, TrainRunConfig)
    ]


def run_rows(out: Path, runs: Sequence[RunSpec]) -> pd.DataFrame:
    """One row per training run and day set: its team's, ToU's and the rule's results on
    those days, training time (``run_wall_s``: the whole run, the summary's evaluations
    included) and curve figures."""
    import pandas as pd

    rows = []
    for spec, config, summary in _summaries(out, runs):
        run = {
            **spec.labels,
            "iterations": summary["setup"]["iterations"],
            "train_wall_s": summary["train_wall_s"],
            "run_wall_s": json.loads((run_dir_of(out, spec) / RUN_FILE).read_text())["wall_s"],
        }
        for day_set in played_days(config):
            played = summary[str(day_set)]
            policy = played["policy"]
            rows.append(
                {
                    **run,
                    "day_set": str(day_set),
                    "days": played["days"],
                    "cost_eur": policy["cost_eur"],
                    "tou_cost_eur": played["tou"]["cost_eur"],
                    "rule_cost_eur": played["rule"]["cost_eur"],
                    **{key: policy[key] for key in RESULT_COLUMNS},
                    **{k: summary["curve"].get(k, float("nan")) for k in CURVE_COLUMNS},
                }
            )
    return pd.DataFrame(rows)


def reference_days(out: Path, runs: Sequence[RunSpec]) -> pd.DataFrame:
    """One row per reference simulation (network, day set, day, reference): its prosumer
    cost, DSO net in total and in its lowest interval, voltage violations and, for the
    ``optimum``, the prosumers and the message volume per interval (the market's counters,
    as ``study overhead`` reads them)."""
    import pandas as pd

    from abm.inputs.scenario import scenario_from_dict
    from abm.study.overhead import overhead_row

    rows = []
    for spec in (s for s in runs if not is_training(s)):
        run_dir = run_dir_of(out, spec)
        summary = json.loads((run_dir / "summary.json").read_text())
        row = {
            **spec.labels,
            "cost_eur": summary["prosumer_cost_eur"],
            "dso_net_eur": summary["welfare_dso_eur"],
            "dso_net_min_interval_eur": summary["dso_net_min_interval_eur"],
            "voltage_violations": summary["voltage_violations"],
        }
        if spec.labels["reference"] == "optimum":
            config = json.loads((run_dir / "config.json").read_text())
            row["n_prosumers"] = len(scenario_from_dict(config["scenario"]).prosumers)
            volume = overhead_row(out, spec)
            row.update({key: volume[key] for key in MESSAGE_COLUMNS[1:]})
        rows.append(row)
    return pd.DataFrame(rows)


def reference_costs(days: pd.DataFrame) -> pd.DataFrame:
    """Per network and day set (:func:`reference_days` summed over the days): the days, each
    reference's prosumer cost, the MPC's DSO net (total, lowest interval) and voltage
    violations, the prosumers and the optimum's message volume per interval (mean over the
    days)."""
    import pandas as pd

    rows = []
    for (network, day_set), group in days.groupby(["network", "day_set"], sort=False):
        by_reference = group.groupby("reference", sort=False)
        mpc, optimum = by_reference.get_group("mpc"), by_reference.get_group("optimum")
        costs = by_reference["cost_eur"].sum()
        rows.append(
            {
                "network": network,
                "day_set": day_set,
                "days": len(optimum),
                **{f"{label}_cost_eur": cost for label, cost in costs.items()},
                "mpc_dso_net_eur": mpc["dso_net_eur"].sum(),
                "mpc_dso_net_min_interval_eur": mpc["dso_net_min_interval_eur"].min(),
                "mpc_voltage_violations": int(mpc["voltage_violations"].sum()),
                "n_prosumers": int(optimum["n_prosumers"].iloc[0]),
                **{key: optimum[key].mean() for key in MESSAGE_COLUMNS[1:]},
            }
        )
    return pd.DataFrame(rows).set_index(["network", "day_set"])


def with_shares(frame: pd.DataFrame, references: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (one row per run and day set: ``network``, ``day_set``, ``cost_eur``,
    ``tou_cost_eur``) with the references' costs on those days, each run's and the ToU rule's
    share of the optimum's savings over grid-only, and each run's ``gap_closed`` (of the
    run's ToU cost to the optimum)."""
    from analysis.compare import gap_closed, share_of_optimum_savings

    costs = [f"{label}_cost_eur" for label in REFERENCES]
    joined = frame.join(references[costs], on=["network", "day_set"])
    grid_only, optimum = joined["grid-only_cost_eur"].to_numpy(), joined["optimum_cost_eur"]
    for column, cost in (
        ("share_of_optimum", "cost_eur"),
        ("tou_share_of_optimum", "tou_cost_eur"),
    ):
        joined[column] = share_of_optimum_savings(
            grid_only, joined[cost].to_numpy(), optimum.to_numpy()
        )
    joined["gap_closed"] = gap_closed(
        joined["tou_cost_eur"].to_numpy(), joined["cost_eur"].to_numpy(), optimum.to_numpy()
    )
    return joined


def paired_rows(out: Path, runs: Sequence[RunSpec], days: pd.DataFrame) -> pd.DataFrame:
    """Per network, learner and day set: the per-day costs (each day's mean over seeds)
    against ToU's (the runs' ``summary.json``, mean over seeds) and the MPC's (its reference
    simulation of each day), paired by day (:func:`analysis.compare.paired_days`): the mean
    per-day difference (EUR/day) and the two-sided Wilcoxon signed-rank p-value; and a row
    ``mpc`` per network and day set, the MPC's days against ToU's (and against itself: 0 and
    NaN)."""
    import numpy as np
    import pandas as pd

    from analysis.compare import paired_days

    policy: dict[tuple[str, str, str], list[list[float]]] = {}
    tou: dict[tuple[str, str, str], list[list[float]]] = {}
    played: dict[tuple[str, str, str], tuple[int, ...]] = {}
    for spec, config, summary in _summaries(out, runs):
        for day_set, day_list in played_days(config).items():
            key = (spec.labels["network"], spec.labels["algo"], str(day_set))
            policy.setdefault(key, []).append(summary[str(day_set)]["policy"]["cost_eur_per_day"])
            tou.setdefault(key, []).append(summary[str(day_set)]["tou"]["cost_eur_per_day"])
            played[key] = day_list
    mpc = days[days["reference"] == "mpc"].set_index(["network", "day_set", "day"])["cost_eur"]
    rows = []
    baselines: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    for key, costs in policy.items():
        network, algo, set_name = key
        mpc_days = mpc.loc[[(network, set_name, day) for day in played[key]]].to_numpy()
        tou_days = np.mean(tou[key], axis=0)
        baselines.setdefault((network, set_name), (tou_days, mpc_days))
        rows.append((network, algo, set_name, np.mean(costs, axis=0), tou_days, mpc_days))
    for (network, set_name), (tou_days, mpc_days) in baselines.items():  # the MPC itself
        rows.append((network, "mpc", set_name, mpc_days, tou_days, mpc_days))
    table = []
    for network, algo, set_name, per_day, tou_days, mpc_days in rows:
        row: dict[str, Any] = {"network": network, "algo": algo, "day_set": set_name}
        for name, reference in (("tou", tou_days), ("mpc", mpc_days)):
            test = paired_days(per_day, reference)
            row[f"vs_{name}_eur_per_day"] = test["diff_eur_per_day"]
            row[f"p_vs_{name}"] = test["p_wilcoxon"]
        table.append(row)
    return pd.DataFrame(table)


def by_learner(runs: pd.DataFrame, paired: pd.DataFrame) -> pd.DataFrame:
    """Per network, learner and day set (a learner's validation and test rows together): cost
    mean, std (n - 1; 0 with one seed), min and max over seeds, ``gap_closed`` and the share
    of the optimum's savings (mean, std), DSO net (mean; its lowest interval over seeds),
    voltage violations (most over seeds), the paired per-day tests against ToU and the MPC
    (``paired``), training time and the exploration measures (means over seeds)."""
    import pandas as pd

    def std(values: pd.Series) -> float:
        return float(values.std(ddof=1)) if len(values) > 1 else 0.0

    rows = []
    for (network, algo, day_set), group in runs.groupby(["network", "algo", "day_set"], sort=False):
        cost = group["cost_eur"]
        rows.append(
            {
                "network": network,
                "algo": algo,
                "day_set": day_set,
                "seeds": len(group),
                "days": group["days"].iloc[0],
                "cost_eur_mean": cost.mean(),
                "cost_eur_std": std(cost),
                "cost_eur_min": cost.min(),
                "cost_eur_max": cost.max(),
                "gap_closed_mean": group["gap_closed"].mean(),
                "gap_closed_std": std(group["gap_closed"]),
                "share_of_optimum_mean": group["share_of_optimum"].mean(),
                "share_of_optimum_std": std(group["share_of_optimum"]),
                "dso_net_eur_mean": group["dso_net_eur"].mean(),
                "dso_net_min_interval_eur": group["dso_net_min_interval_eur"].min(),
                "voltage_violations_max": group["voltage_violations"].max(),
                "train_wall_s_mean": group["train_wall_s"].mean(),
                **{c: group[c].mean() for c in CURVE_COLUMNS},
            }
        )
    # run_rows' order (each run's validation, then test) puts a learner's day sets together
    return pd.DataFrame(rows).merge(paired, on=["network", "algo", "day_set"], how="left")


def gap_table(
    summary: pd.DataFrame, references: pd.DataFrame, paired: pd.DataFrame
) -> pd.DataFrame:
    """Per network, one row per learner (``summary``: :func:`by_learner`) and reference (ToU,
    MPC, optimum, grid-only; ``references`` with the ToU cost), the day sets side by side
    (``validation_*``, ``test_*``): cost per day (mean and std over seeds), gap closed (mean
    and std) and the paired per-day p-values against ToU and the MPC (``paired``; the MPC's
    against ToU). A reference is one run per day: no std."""
    import pandas as pd

    from analysis.compare import gap_closed

    rows = [
        {
            "network": row["network"],
            "policy": row["algo"],
            "day_set": row["day_set"],
            "cost_eur_per_day_mean": row["cost_eur_mean"] / row["days"],
            "cost_eur_per_day_std": row["cost_eur_std"] / row["days"],
            "gap_closed_mean": row["gap_closed_mean"],
            "gap_closed_std": row["gap_closed_std"],
            "p_vs_tou": row["p_vs_tou"],
            "p_vs_mpc": row["p_vs_mpc"],
        }
        for _, row in summary.iterrows()
    ]
    mpc = paired[paired["algo"] == "mpc"].set_index(["network", "day_set"])["p_vs_tou"]
    for (network, day_set), reference in references.iterrows():
        tou, optimum = reference["tou_cost_eur"], reference["optimum_cost_eur"]
        for label in ("tou", *REFERENCES):
            cost = reference[f"{label}_cost_eur"]
            rows.append(
                {
                    "network": network,
                    "policy": label,
                    "day_set": day_set,
                    "cost_eur_per_day_mean": cost / reference["days"],
                    "gap_closed_mean": gap_closed(tou, cost, optimum),
                    "p_vs_tou": mpc[(network, day_set)] if label == "mpc" else float("nan"),
                }
            )
    long = pd.DataFrame(rows)
    wide = long.pivot(index=["network", "policy"], columns="day_set")
    sets = list(dict.fromkeys(long["day_set"]))
    values = [c for c in long.columns if c not in ("network", "policy", "day_set")]
    wide = wide[[(value, day_set) for day_set in sets for value in values]]
    wide.columns = [f"{day_set}_{value}" for value, day_set in wide.columns]
    order = list(dict.fromkeys(zip(long["network"], long["policy"], strict=True)))
    return wide.loc[order]


def curve_files(out: Path, runs: Sequence[RunSpec], network: str) -> dict[str, list[Path]]:
    """Per learner: its seeds' ``metrics.csv`` on ``network``."""
    files: dict[str, list[Path]] = {}
    for spec in filter(is_training, runs):
        if spec.labels["network"] == network:
            files.setdefault(spec.labels["algo"], []).append(run_dir_of(out, spec) / "metrics.csv")
    return files


def analyse(
    out: Path, runs: Sequence[RunSpec], name: str, *, with_messages: bool = False
) -> list[Path]:
    """``name.csv``/``.md`` (per network, learner and day set; ``with_messages``: beside the
    network's prosumers and message volume per interval), ``runs.csv``/``.md`` (per run and
    day set), ``references.csv``/``.md`` (per network and day set), ``gap_closed.csv``/``.md``
    (per network, learner and reference, the day sets side by side: :func:`gap_table`) and
    ``training_curves[-<network>].png``."""
    from analysis.compare import gap_closed, share_of_optimum_savings
    from analysis.figures.training import plot_training_curves

    days = reference_days(out, runs)
    references = reference_costs(days)
    per_run = with_shares(run_rows(out, runs), references)
    paired = paired_rows(out, runs, days)
    summary = by_learner(per_run, paired)
    keys = ["network", "day_set"]
    tou = per_run.groupby(keys)[["tou_cost_eur", "rule_cost_eur", "tou_share_of_optimum"]]
    references = references.join(tou.first())
    references["mpc_share_of_optimum"] = share_of_optimum_savings(
        references["grid-only_cost_eur"], references["mpc_cost_eur"], references["optimum_cost_eur"]
    )
    references["mpc_gap_closed"] = gap_closed(
        references["tou_cost_eur"], references["mpc_cost_eur"], references["optimum_cost_eur"]
    )
    gap_files = write_table(gap_table(summary, references, paired), out, "gap_closed")
    if with_messages:
        summary = summary.join(references[list(MESSAGE_COLUMNS)], on=keys)
    summary_files = write_table(summary, out, name, index=False, digits=7)
    reference_files = write_table(references, out, "references", digits=7)
    outputs = [*summary_files, *write_table(per_run, out, "runs", index=False, digits=7)]
    outputs += [*reference_files, *gap_files]
    networks = list(dict.fromkeys(s.labels["network"] for s in runs))
    for network in networks:
        suffix = f"-{network}" if len(networks) > 1 else ""
        outputs.append(
            plot_training_curves(
                curve_files(out, runs, network), out / f"training_curves{suffix}.png"
            )
        )
    for _, md in (summary_files, reference_files, gap_files):
        print(md.read_text())
    return outputs
