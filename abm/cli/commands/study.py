"""``p2pvar study NAME``: case studies of many runs through the executor (``docs/studies.md``).

Each study (:data:`abm.study.registry.STUDIES`) builds its run specs, hands them to
:func:`abm.study.executor.execute` (local worker processes, or a Ray cluster with ``--ray``)
and writes its tables and plots into ``--out``; a study started again skips the runs it
finished before.
"""

from __future__ import annotations

import argparse
import functools

from abm.study.registry import STUDIES
from abm.study.runs import Study, add_executor_args, run_study


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``study`` and its case studies."""
    parser = sub.add_parser("study", help="case studies that run and compare many simulations")
    studies = parser.add_subparsers(dest="study", metavar="STUDY", required=True)
    for name, study in STUDIES.items():
        doc = study.doc or ""
        description = " ".join(doc.split("\n\n", 1)[-1].split()) if "\n\n" in doc else study.help
        command = studies.add_parser(name, help=study.help, description=description)
        study.add_args(command)
        add_executor_args(command)
        command.set_defaults(func=functools.partial(_run, study))


def _run(study: Study, args: argparse.Namespace) -> int:
    return run_study(
        args, study.name, study.specs(args), lambda out, runs: study.analyse(out, runs, args)
    )
