"""Shared output helpers for CLI commands (human table or ``--json``)."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3) and math.isfinite(value):
            return f"{value:.4g}"
        return f"{value:,.4f}".rstrip("0").rstrip(".")
    return str(value)


def emit(result: Mapping[str, Any], as_json: bool, title: str = "") -> None:
    """Print ``result`` as JSON (one object) or as an aligned ``key  value`` table."""
    if as_json:
        print(json.dumps(result, indent=2, sort_keys=False))
        return
    if title:
        print(title)
    width = max((len(k) for k in result), default=0)
    for key, value in result.items():
        print(f"  {key:<{width}}  {_fmt(value)}")


def add_out_args(parser: argparse.ArgumentParser, *, required: bool) -> None:
    """Add ``--out DIR`` and ``--overwrite`` (checked by
    :func:`abm.output.out_dir.prepare_out_dir`)."""
    parser.add_argument(
        "--out", type=Path, required=required, default=None, help="directory for results"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier run's results in --out (refused if it holds other files)",
    )
