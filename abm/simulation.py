"""Run a market simulation in-process and write its results."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from abm.config import write_run_config
from abm.jsonfile import write_json
from abm.model import MarketModel
from abm.results import write_tables
from abm.scenario import scenario_to_dict
from abm.sim_config import SimConfig
from analysis.metrics import summarize


@dataclass
class SimulationResult:
    """Result tables and summary of a finished run."""

    tables: dict[str, pd.DataFrame]
    summary: dict[str, float]


def run_simulation(
    config: SimConfig, out_dir: Path | None = None, *, progress: bool = True
) -> SimulationResult:
    """Simulate every interval of ``config``; write tables, config and summary to ``out_dir``."""
    model = MarketModel(config)
    world = model.world
    with tqdm(
        total=world.n_intervals, desc="intervals", unit="int", disable=not progress, leave=False
    ) as bar:
        while not model.done:
            model.step()
            bar.update(1)
    tables = model.tables()
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
    return SimulationResult(tables, summary)
