"""``p2pvar report``: a self-contained HTML report of finished runs, studies and training."""

from __future__ import annotations

import argparse
from pathlib import Path

from abm.cli.commands.output import add_out_args
from abm.errors import AbmError


class ReportInputError(AbmError):
    """A ``--runs`` folder is missing or holds no results; the message names it."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``report``."""
    parser = sub.add_parser(
        "report",
        help="an HTML report (figures embedded, tables also as CSV) of runs and studies",
        description="Write OUT/report.html with every figure embedded (also OUT/figures/*.png) "
        "and every table also written as OUT/tables/*.csv. Each --runs folder is a run "
        "(config.json and summary.json), or a study or any folder holding runs or training "
        "logs (metrics.csv) below it.",
    )
    parser.add_argument(
        "--runs", type=Path, nargs="+", required=True, metavar="DIR", help="run or study folders"
    )
    add_out_args(parser, required=True)
    parser.add_argument(
        "--run-figures",
        type=int,
        default=12,
        metavar="N",
        help="draw each run's own figures for the first N runs (default: 12)",
    )
    parser.add_argument("--title", default="p2pvar report", help="the report's title")
    parser.set_defaults(func=run_report)


def check_inputs(folders: list[Path]) -> None:
    """Refuse a ``--runs`` folder that is missing or holds no runs or training logs."""
    from analysis.report import find_runs, find_training_logs

    for folder in folders:
        if not folder.is_dir():
            what = "is a file, not a folder" if folder.exists() else "no such folder"
            raise ReportInputError(f"--runs {folder}: {what}")
        if not find_runs(folder) and not find_training_logs(folder):
            raise ReportInputError(
                f"--runs {folder}: holds no run (a folder with config.json and summary.json) "
                "and no training log (metrics.csv)"
            )


def run_report(args: argparse.Namespace) -> int:
    """Check the inputs and the output folder, then write the report."""
    from abm.output.out_dir import prepare_out_dir
    from analysis.report import write_report

    if args.run_figures < 0:
        raise ReportInputError(f"--run-figures {args.run_figures}: must be >= 0")
    check_inputs(args.runs)
    out = prepare_out_dir(args.out, args.overwrite)
    path = write_report(args.runs, out, run_figures=args.run_figures, title=args.title)
    print(f"report written to {path}")
    return 0
