"""``p2pvar study NAME``: case studies of many runs through the executor (``docs/studies.md``).

Each study builds its run specs, hands them to :func:`abm.study.executor.execute` (local
worker processes, or a Ray cluster with ``--ray``) and writes its tables and plots into
``--out``; a study started again skips the runs it finished before.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from types import ModuleType

from abm.study import algorithms, envelopes, interdependence, markets, overhead, scalability
from abm.study.runs import add_executor_args, run_study

#: The studies: module and one-line help.
STUDIES: dict[str, tuple[ModuleType, str]] = {
    markets.NAME: (markets, "every market mode under each policy: value of P2P, Var and both"),
    envelopes.NAME: (envelopes, "dynamic envelopes vs a static export cap: hosting capacity"),
    interdependence.NAME: (interdependence, "sweeps: how the P2P and Var markets interact"),
    overhead.NAME: (overhead, "messages, bytes and latency vs number of prosumers"),
    algorithms.NAME: (algorithms, "EA-MATD3 vs MATD3, MADDPG, ITD3 over seeds: training runs"),
    scalability.NAME: (scalability, "the learners on swiss161 (all prosumers) beside ieee33"),
}


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``study`` and its case studies."""
    parser = sub.add_parser("study", help="case studies that run and compare many simulations")
    studies = parser.add_subparsers(dest="study", metavar="STUDY", required=True)
    for name, (module, help_text) in STUDIES.items():
        doc = module.__doc__ or ""
        description = " ".join(doc.split("\n\n", 1)[-1].split()) if "\n\n" in doc else help_text
        study = studies.add_parser(name, help=help_text, description=description)
        module.add_args(study)
        add_executor_args(study)
        study.set_defaults(func=functools.partial(_run, module))


def _analyser(module: ModuleType, args: argparse.Namespace) -> Callable[..., list]:
    """The study's analysis with the options it takes from the command line."""
    if module is envelopes:
        return functools.partial(envelopes.analyse, tolerance_pct=args.curtailment_tolerance_pct)
    if module is interdependence:
        return functools.partial(interdependence.analyse, base=interdependence.base_config(args))
    return module.analyse


def _run(module: ModuleType, args: argparse.Namespace) -> int:
    return run_study(args, module.NAME, module.specs(args), _analyser(module, args))
