"""Result tables of a run, written as CSV files that pandas reads directly.

Tables (documented in ``docs/outputs.md``): ``intervals``, ``prosumers``, ``trades``,
``buses``, ``messages``. Each is written to a temporary file and renamed, so an interrupted
run never leaves a half-written table; ``summary.json`` is written last.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

TABLES = ("intervals", "prosumers", "trades", "buses", "messages")


class ResultTables:
    """Rows of every result table, appended during a run."""

    def __init__(self, names: tuple[str, ...] = TABLES) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = {name: [] for name in names}

    def add(self, table: str, row: Mapping[str, Any]) -> None:
        """Append one row to ``table``."""
        self.rows[table].append(dict(row))

    def extend(self, table: str, rows: list[dict[str, Any]]) -> None:
        """Append several rows to ``table``."""
        self.rows[table].extend(rows)

    def frame(self, table: str) -> pd.DataFrame:
        """The table as a DataFrame."""
        return pd.DataFrame(self.rows[table])

    def write(self, out_dir: Path) -> list[Path]:
        """Write every table as ``<name>.csv`` into ``out_dir`` (atomically per file)."""
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for name in self.rows:
            path = out_dir / f"{name}.csv"
            tmp = path.with_suffix(".csv.tmp")
            self.frame(name).to_csv(tmp, index=False)
            tmp.replace(path)
            paths.append(path)
        return paths


def write_json(path: Path, doc: Mapping[str, Any]) -> None:
    """Write a JSON document atomically."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)
