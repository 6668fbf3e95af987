"""``study algorithms``: EA-MATD3 against MATD3, MADDPG and ITD3 over seeds.

One ``p2pvar train`` run per learner and seed (network ieee33, market multi by default,
residual on ToU), each playing its exported team on the validation days and, after
training, on the test days, and the references on the same days (grid-only, optimum, MPC:
:mod:`abm.study.learners`). Sizes: ``--quick`` 2 iterations of 11 worlds on 4 training
days, 1 validation and 1 test day; full the default budget of ``p2pvar train`` (30
iterations of 44 worlds, all 58 validation and all 73 test days). Outputs:
``algorithms.csv``/``.md`` (per learner and day set: cost mean ± std and min-max over seeds,
gap closed and share of the optimum's savings mean ± std, DSO net, voltage violations, the
paired per-day Wilcoxon tests against ToU and the MPC, training time, coverage and
diversity), ``runs.csv``/``.md`` (per run and day set), ``references.csv``/``.md``
(grid-only, optimum, MPC, ToU and rule per day set), ``gap_closed.csv``/``.md`` (learners and
references, validation and test side by side: cost per day and gap closed mean ± std,
p-values) and ``training_curves.png`` (mean and ± one std over seeds of the training return
and the validation cost per day).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from abm.study import learners
from abm.study.executor import RunSpec
from abm.study.runs import Study
from agents.learners import LEARNERS

NAME = "algorithms"


def add_args(parser: argparse.ArgumentParser) -> None:
    """``--network`` (default ieee33), ``--algos``, ``--seeds`` and the training flags."""
    parser.add_argument("--network", default="ieee33", help="network (default: ieee33)")
    learners.add_args(parser, algos=",".join(LEARNERS), seeds="0,1,2")


def specs(args: argparse.Namespace) -> list[RunSpec]:
    """Every learner and seed, and the references of every day played."""
    base = learners.base_config(args)
    networks = [args.network]
    return [  # the references first: short, and every table needs them
        *learners.reference_specs(base, networks),
        *learners.training_specs(base, networks, args.algos, args.seeds),
    ]


def analyse(out: Path, runs: Sequence[RunSpec], args: argparse.Namespace) -> list[Path]:
    """The tables and the training curves."""
    return learners.analyse(out, runs, NAME)


#: The study, as :data:`abm.study.registry.STUDIES` lists it.
STUDY = Study(
    NAME,
    "EA-MATD3 vs MATD3, MADDPG, ITD3 over seeds: training runs",
    add_args,
    specs,
    analyse,
    __doc__,
)
