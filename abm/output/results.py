"""Result tables of a run, written as CSV files that pandas reads directly.

Tables (documented in ``docs/outputs.md``): ``intervals``, ``prosumers``, ``trades``,
``buses``, ``messages``. Each is written to a temporary file and renamed, so an interrupted
run never leaves a half-written table.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd


def write_tables(out_dir: Path, tables: Mapping[str, pd.DataFrame]) -> list[Path]:
    """Write every table as ``<name>.csv`` into ``out_dir`` (atomically per file)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, frame in tables.items():
        path = out_dir / f"{name}.csv"
        tmp = path.with_suffix(".csv.tmp")
        frame.to_csv(tmp, index=False)
        tmp.replace(path)
        paths.append(path)
    return paths
