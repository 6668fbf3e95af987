"""What the learner studies (``algorithms``, ``scalability``) share: one training run
(``p2pvar train``) per network, learner and seed through the executor, the references on the
same held-out days, and their tables and training curves.

The references are simulations the study makes, one per validation day (``--val-days`` of
the training runs, each a one-day run from the initial battery state, as the runs'
held-out evaluation plays them): ``grid-only`` with the rule policy (the reference of the
share of the optimum's savings, as in ``study markets``) and the perfect-foresight
``optimum`` in the study's market (``docs/optimum.md``). Their in-process market counters
give the message volume per interval.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from abm.cli.args import add_config_args, config_from_args
from abm.config import DaySet, Market, SimConfig
from abm.errors import ConfigError
from abm.inputs.profiles import VALIDATION_DAYS
from abm.study.executor import RUN_FILE, RunSpec, run_dir_of
from abm.study.runs import choice_list, write_table
from abm.training.train_config import LEARNER_SETTINGS, NOT_TRAINED, TrainRunConfig, spread_days
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
}
#: Training flags the study sets itself (per run) or leaves out.
OWN_FIELDS = ("algo", "seed", "network")
#: The reference simulations of each held-out day: label -> (market or None for the
#: study's, policy).
REFERENCES: dict[str, tuple[Market | None, str]] = {
    "grid-only": (Market.GRID_ONLY, "rule"),
    "optimum": (None, "optimum"),
}
#: The network's size and message volume (``references``) in the scalability table.
MESSAGE_COLUMNS = (
    "n_prosumers",
    "messages_per_interval",
    "deliveries_per_interval",
    "bytes_per_interval",
)
#: Columns of the per-run table read from each run's ``summary.json``.
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
    sized = {name: None for name in QUICK_BUDGET}
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
    (``--quick``: :data:`QUICK_BUDGET`; else ``full``), then every flag given."""
    names = [f.name for f in dataclasses.fields(TrainRunConfig) if f.name not in OWN_FIELDS]
    given = {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}
    size = QUICK_BUDGET if args.quick else (full or {})
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
    """The reference simulations of every held-out day of ``base`` on each network."""
    out = []
    for network in networks:
        prefix = _run_prefix(network, networks)
        for day in spread_days(VALIDATION_DAYS, base.val_days):
            for label, (market, policy) in REFERENCES.items():
                config = dataclasses.replace(
                    base.sim,
                    network=network,
                    market=market or base.sim.market,
                    policy=policy,
                    days=1,
                    day_set=DaySet.VALIDATION,
                    first_day=VALIDATION_DAYS.index(day),
                )
                labels = {"network": network, "reference": label, "day": day}
                out.append(RunSpec(f"{prefix}{label}-d{day:03d}", config, labels=labels))
    return out


def is_training(spec: RunSpec) -> bool:
    """Whether ``spec`` is a training run (else a reference simulation)."""
    return isinstance(spec.config, TrainRunConfig)


# ---------------------------------------------------------------------------- analysis
def run_rows(out: Path, runs: Sequence[RunSpec]) -> pd.DataFrame:
    """One row per training run: its held-out results, training time (``run_wall_s``: the
    whole run, the held-out evaluation of the summary included) and curve figures."""
    import pandas as pd

    rows = []
    for spec in filter(is_training, runs):
        run_dir = run_dir_of(out, spec)
        summary = json.loads((run_dir / "summary.json").read_text())
        rows.append(
            {
                **spec.labels,
                "iterations": summary["setup"]["iterations"],
                "train_wall_s": summary["train_wall_s"],
                "run_wall_s": json.loads((run_dir / RUN_FILE).read_text())["wall_s"],
                "cost_eur": summary["validation"]["policy"]["cost_eur"],
                "tou_cost_eur": summary["validation"]["tou"]["cost_eur"],
                "rule_cost_eur": summary["validation"]["rule"]["cost_eur"],
                "dso_net_eur": summary["validation"]["policy"]["dso_net_eur"],
                "voltage_violations": summary["validation"]["policy"]["voltage_violations"],
                **{k: summary["curve"].get(k, float("nan")) for k in CURVE_COLUMNS},
            }
        )
    return pd.DataFrame(rows)


def reference_costs(out: Path, runs: Sequence[RunSpec]) -> pd.DataFrame:
    """Per network: each reference's prosumer cost summed over the held-out days, the
    number of days and prosumers, and the message volume per interval of the ``optimum``
    runs (the market's counters, as ``study overhead`` reads them; mean over the days)."""
    import pandas as pd

    from abm.inputs.scenario import scenario_from_dict
    from abm.study.overhead import overhead_row

    rows: dict[str, dict[str, Any]] = {}
    for spec in (s for s in runs if not is_training(s)):
        run_dir = run_dir_of(out, spec)
        network, label = spec.labels["network"], spec.labels["reference"]
        row = rows.setdefault(network, {"network": network, "days": 0})
        cost = json.loads((run_dir / "summary.json").read_text())["prosumer_cost_eur"]
        row[f"{label}_cost_eur"] = row.get(f"{label}_cost_eur", 0.0) + cost
        if label == "optimum":
            row["days"] += 1
            config = json.loads((run_dir / "config.json").read_text())
            row["n_prosumers"] = len(scenario_from_dict(config["scenario"]).prosumers)
            for key, value in overhead_row(out, spec).items():
                if key.endswith("_per_interval"):
                    row[key] = row.get(key, 0.0) + value
    frame = pd.DataFrame(list(rows.values())).set_index("network")
    for key in [c for c in frame.columns if c.endswith("_per_interval")]:
        frame[key] = frame[key] / frame["days"]
    return frame


def with_shares(frame: pd.DataFrame, references: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (one row per run, a ``network`` column) with the references' costs and each
    run's and the ToU rule's share of the optimum's savings over grid-only."""
    from analysis.compare import share_of_optimum_savings

    joined = frame.join(references[["grid-only_cost_eur", "optimum_cost_eur"]], on="network")
    for column, cost in (
        ("share_of_optimum", "cost_eur"),
        ("tou_share_of_optimum", "tou_cost_eur"),
    ):
        joined[column] = share_of_optimum_savings(
            joined["grid-only_cost_eur"].to_numpy(),
            joined[cost].to_numpy(),
            joined["optimum_cost_eur"].to_numpy(),
        )
    return joined


def by_learner(runs: pd.DataFrame) -> pd.DataFrame:
    """Per network and learner: held-out cost mean, std (n - 1; 0 with one seed), min and
    max over seeds, mean difference to ToU, share of the optimum's savings (mean, std),
    training time and the exploration measures (means over seeds)."""
    import pandas as pd

    rows = []
    for (network, algo), group in runs.groupby(["network", "algo"], sort=False):
        cost, share = group["cost_eur"], group["share_of_optimum"]
        rows.append(
            {
                "network": network,
                "algo": algo,
                "seeds": len(group),
                "cost_eur_mean": cost.mean(),
                "cost_eur_std": cost.std(ddof=1) if len(group) > 1 else 0.0,
                "cost_eur_min": cost.min(),
                "cost_eur_max": cost.max(),
                "vs_tou_eur": (cost - group["tou_cost_eur"]).mean(),
                "share_of_optimum_mean": share.mean(),
                "share_of_optimum_std": share.std(ddof=1) if len(group) > 1 else 0.0,
                "train_wall_s_mean": group["train_wall_s"].mean(),
                **{c: group[c].mean() for c in CURVE_COLUMNS},
            }
        )
    return pd.DataFrame(rows)


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
    """``name.csv``/``.md`` (per network and learner; ``with_messages``: beside the network's
    prosumers and message volume per interval), ``runs.csv``/``.md`` (per run),
    ``references.csv``/``.md`` (per network) and ``training_curves[-<network>].png``."""
    from analysis.figures.training import plot_training_curves

    references = reference_costs(out, runs)
    per_run = with_shares(run_rows(out, runs), references)
    summary = by_learner(per_run)
    tou = per_run.groupby("network")[["tou_cost_eur", "rule_cost_eur", "tou_share_of_optimum"]]
    references = references.join(tou.first())
    if with_messages:
        summary = summary.join(references[list(MESSAGE_COLUMNS)], on="network")
    summary_files = write_table(summary, out, name, index=False, digits=7)
    reference_files = write_table(references, out, "references", digits=7)
    outputs = [*summary_files, *write_table(per_run, out, "runs", index=False, digits=7)]
    outputs += reference_files
    networks = list(dict.fromkeys(s.labels["network"] for s in runs))
    for network in networks:
        suffix = f"-{network}" if len(networks) > 1 else ""
        outputs.append(
            plot_training_curves(
                curve_files(out, runs, network), out / f"training_curves{suffix}.png"
            )
        )
    for _, md in (summary_files, reference_files):
        print(md.read_text())
    return outputs
