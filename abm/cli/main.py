"""The ``p2pvar`` command line.

Each subcommand lives in its own module under :mod:`abm.cli.commands` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (``args -> exit code``).
Errors of our packages reach the user as one line, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import sys
from collections.abc import Sequence

from abm.errors import AbmError
from agents.errors import AgentError
from dso.errors import DsoError
from messaging.errors import MessagingError

#: Modules of :mod:`abm.cli.commands` that register a top-level subcommand, in help order.
COMMAND_MODULES: tuple[str, ...] = (
    "demo",
    "grid",
    "simulate",
    "optimum",
    "study",
    "report",
    "train",
    "train_outside",
    "evaluate",
    "deploy",
    "agent",
    "keys",
    "bench",
)

#: Errors printed as one line (exit status 2). ``OSError`` covers files and folders named on
#: the command line (missing, a file where a folder is needed, not writable).
USER_ERRORS = (AbmError, AgentError, DsoError, MessagingError, OSError)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="p2pvar",
        description="P2P electricity trading and Var support market simulator.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"abm.cli.commands.{name}").register(sub)
    return parser


def _version() -> str:
    """The installed package's version (``unknown`` when run from a source tree only)."""
    try:
        return importlib.metadata.version("p2pvar")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``p2pvar`` script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as exc:
        print(f"p2pvar: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("p2pvar: interrupted", file=sys.stderr)
        return 130


def _one_line(exc: BaseException) -> str:
    """The error as one line; an ``OSError`` as "<file>: <reason>"."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror.lower()}"
    return " ".join(str(exc).split())


if __name__ == "__main__":
    sys.exit(main())
