"""What every study shares: one table row per finished run, and the study command's steps
(prepare the folder, execute the runs, analyse them)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from abm.config import enum_value
from abm.errors import ConfigError
from abm.inputs.scenario import pv_penetration, scenario_from_dict
from abm.study.executor import (
    DEFAULT_WORKERS,
    RUN_FILE,
    RunSpec,
    execute,
    prepare_study_dir,
    record_outputs,
    run_dir_of,
)
from agents.registry import Registry

if TYPE_CHECKING:
    import pandas as pd


E = TypeVar("E", bound=Enum)


@dataclass(frozen=True)
class Study:
    """A case study (``p2pvar study NAME``, registered in :data:`abm.study.registry.STUDIES`).

    ``add_args(parser)`` adds its flags, ``specs(args)`` lists its runs, and
    ``analyse(out, runs, args)`` writes its tables and plots from the finished runs and
    returns their paths. ``doc``: the module's docstring (the command's description is its
    text after the first paragraph).
    """

    name: str
    help: str
    add_args: Callable[[argparse.ArgumentParser], None]
    specs: Callable[[argparse.Namespace], list[RunSpec]]
    analyse: Callable[[Path, Sequence[RunSpec], argparse.Namespace], list[Path]]
    doc: str | None = None


def choice_list(choices: type[E] | Registry[Any], name: str, text: str) -> list[Any]:
    """Comma-separated members of ``choices`` (an enum or a registry's names; duplicates
    dropped); :class:`ConfigError` naming ``name`` and the value otherwise."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    if isinstance(choices, Registry):
        values: list[Any] = [choices.check(t, ConfigError, name) for t in items]
    else:
        values = [enum_value(choices, name, t) for t in items]
    if not values:
        raise ConfigError(f"{name}={text!r} must name at least one of {', '.join(choices)}")
    return list(dict.fromkeys(values))


def run_row(out_dir: Path, spec: RunSpec) -> dict[str, Any]:
    """A finished run's labels, summary, energy figures and timing as one flat row."""
    import pandas as pd

    run_dir = run_dir_of(out_dir, spec)
    config = json.loads((run_dir / "config.json").read_text())
    record = json.loads((run_dir / RUN_FILE).read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    status = json.loads((run_dir / "status.json").read_text())
    row: dict[str, Any] = {"run": spec.name, **spec.labels}
    row.update({k: v for k, v in summary.items() if isinstance(v, int | float)})
    scenario = scenario_from_dict(config["scenario"])
    duration_h = scenario.interval_min / 60.0
    prosumers = pd.read_csv(run_dir / "prosumers.csv", usecols=["pv_kw", "pv_used_kw", "p_kw"])
    row["pv_penetration"] = pv_penetration(scenario)
    row["pv_kwp"] = sum(p.pv_kwp for p in scenario.prosumers)
    row["pv_available_kwh"] = float(prosumers["pv_kw"].sum() * duration_h)
    row["pv_exported_kwh"] = float(prosumers["p_kw"].clip(lower=0.0).sum() * duration_h)
    row["n_prosumers"] = len(scenario.prosumers)
    row["wall_s"] = record["wall_s"]
    if "interval_ms_median" in status:
        row["interval_ms_median"] = status["interval_ms_median"]
    return row


def write_table(
    frame: pd.DataFrame, out_dir: Path, name: str, *, index: bool = True, digits: int = 4
) -> list[Path]:
    """Write ``frame`` as ``OUT/name.csv`` and ``OUT/name.md`` (numbers to ``digits``
    significant digits); return both paths."""
    from analysis.compare import to_markdown

    csv, md = out_dir / f"{name}.csv", out_dir / f"{name}.md"
    frame.to_csv(csv, index=index)
    shown = frame if index else frame.set_index(frame.columns[0])
    if shown.index.nlevels > 1:  # the first level as the row label, the others as columns
        shown = shown.reset_index(level=list(range(1, shown.index.nlevels)))
    md.write_text(to_markdown(shown, digits) + "\n")
    return [csv, md]


def add_executor_args(parser: argparse.ArgumentParser) -> None:
    """The flags every study shares: output folder, size, workers, Ray, progress."""
    parser.add_argument("--out", type=Path, required=True, help="study folder")
    parser.add_argument(
        "--overwrite", action="store_true", help="start afresh, removing this study's earlier runs"
    )
    parser.add_argument("--quick", action="store_true", help="the quick size (minutes)")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help=f"local worker processes (default: min({DEFAULT_WORKERS}, CPUs))",
    )
    parser.add_argument(
        "--ray",
        metavar="ADDRESS",
        default=None,
        help="run on this Ray cluster ('local': a local instance; needs p2pvar[ray])",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def default_workers() -> int:
    """``min(DEFAULT_WORKERS, CPUs)``."""
    return max(1, min(DEFAULT_WORKERS, os.cpu_count() or 1))


def run_study(
    args: argparse.Namespace,
    study: str,
    specs: Sequence[RunSpec],
    analyse: Callable[[Path, Sequence[RunSpec]], list[Path]],
) -> int:
    """Execute a study's runs (skipping those finished earlier), then analyse them.

    Returns 0, or 1 when a run failed (the analysis is then left out)."""
    out: Path = args.out
    resumed = prepare_study_dir(out, study, args.overwrite)
    workers = args.workers if args.workers is not None else default_workers()
    progress = not args.no_progress
    if resumed and progress:
        print(f"resuming the {study} study in {out}", file=sys.stderr)
    outcome = execute(specs, out, workers=workers, ray_address=args.ray, progress=progress)
    print(
        f"{study}: {len(outcome.records)} runs done, {len(outcome.skipped)} finished earlier, "
        f"{len(outcome.failed)} failed",
        file=sys.stderr,
    )
    if not outcome.ok:
        print(
            f"{study}: analysis left out; start the same command again to retry the failed runs",
            file=sys.stderr,
        )
        return 1
    outputs = analyse(out, specs)
    record_outputs(out, outputs)
    print(f"tables and plots written to {out}")
    return 0
