"""``p2pvar bench TARGET``: benchmarks that print figures beside an in-run baseline."""

from __future__ import annotations

import argparse
import importlib

#: Modules of :mod:`abm.bench` that register a ``bench`` target, in help order.
BENCH_MODULES: tuple[str, ...] = (
    "grid",
    "market",
    "matching",
    "env",
    "torchrl",
    "train",
    "messaging",
    "deploy",
    "forecast",
    "policy",
)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``bench`` and its targets."""
    parser = sub.add_parser("bench", help="benchmarks (figures with an in-run baseline)")
    targets = parser.add_subparsers(dest="target", metavar="TARGET", required=True)
    for name in BENCH_MODULES:
        importlib.import_module(f"abm.bench.{name}").register(targets)
