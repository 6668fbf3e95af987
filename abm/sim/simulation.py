"""Run a market simulation in-process and write its results."""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from abm.config import SimConfig
from abm.inputs.run_inputs import RunInputs
from abm.inputs.scenario import scenario_to_dict
from abm.output.jsonfile import write_json
from abm.output.provenance import write_run_config
from abm.output.results import write_tables
from abm.sim.model import MarketModel
from agents.policy import Policy
from analysis.metrics import summarize


@dataclass
class SimulationResult:
    """Result tables and summary of a finished run."""

    tables: dict[str, pd.DataFrame]
    summary: dict[str, float]
    interval_ms: list[float] = field(default_factory=list)  # wall time of each interval


def run_simulation(
    config: SimConfig,
    out_dir: Path | None = None,
    *,
    progress: bool = True,
    world: RunInputs | None = None,
    policies: Mapping[str, Policy] | None = None,
) -> SimulationResult:
    """Simulate every interval of ``config``; write tables, config and summary to ``out_dir``.

    Also writes ``status.json`` (whether every interval ran, the last one completed, the
    median wall time of an interval). On
    Ctrl-C the completed intervals' tables and a status saying where the run stopped are
    written, then :class:`KeyboardInterrupt` is raised again. ``world``: the run's inputs
    if already built from ``config``; ``policies``: prosumers' policies already built (by
    id; the others are ``config.policy``'s).
    """
    model = MarketModel(config, world=world, policies=policies)
    world = model.world
    done = 0
    interrupted = False
    interval_ms: list[float] = []
    with tqdm(
        total=world.n_intervals, desc="intervals", unit="int", disable=not progress, leave=False
    ) as bar:
        try:
            while not model.done:
                start = time.perf_counter()
                model.step()
                interval_ms.append((time.perf_counter() - start) * 1000.0)
                done += 1
                bar.update(1)
        except KeyboardInterrupt:
            interrupted = True
    tables = model.tables()
    if interrupted:  # the interrupted step may have collected part of its rows
        tables = {name: _first_intervals(frame, done) for name, frame in tables.items()}
    summary = summarize(tables, world.duration_h)
    if out_dir is not None:
        write_run_config(
            out_dir,
            config,
            config.seed,
            backend="in-process",
            days=list(world.days),
            scenario=scenario_to_dict(world.scenario),
        )
        write_tables(out_dir, tables)
        write_json(out_dir / "summary.json", summary)
        status = {
            "complete": not interrupted,
            "intervals": world.n_intervals,
            "last_completed_interval": done - 1,
            "stopped_by": "interrupted (Ctrl-C)" if interrupted else "",
            "interval_ms_median": statistics.median(interval_ms) if interval_ms else 0.0,
        }
        write_json(out_dir / "status.json", status)
    if interrupted:
        raise KeyboardInterrupt
    return SimulationResult(tables, summary, interval_ms)


def _first_intervals(table: pd.DataFrame, n: int) -> pd.DataFrame:
    """The rows of intervals ``0 .. n-1``."""
    return table[table["interval"] < n].reset_index(drop=True) if len(table) else table
