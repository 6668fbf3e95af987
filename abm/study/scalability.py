"""``study scalability``: the learners on the Swiss 161-bus feeder with all its prosumers,
beside ieee33.

One ``p2pvar train`` run per network, learner and seed and the references on the same
validation and test days (:mod:`abm.study.learners`); the optimum's market counters give the
message volume. Sizes: ``--quick`` as ``study algorithms --quick``; full the default budget
of ``p2pvar train`` (30 iterations of 44 worlds) evaluated on 12 validation and 12 test days
spread over the year (:data:`FULL_BUDGET`), EA-MATD3 and MATD3 with seed 0. Outputs:
``scalability.csv``/``.md`` (as ``study algorithms``' table per network, learner and day set,
beside the network's prosumers and its messages, deliveries and bytes per interval),
``runs``, ``references``, ``gap_closed`` and ``training_curves-<network>.png``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from abm.errors import ConfigError
from abm.study import learners
from abm.study.executor import RunSpec
from abm.study.runs import Study

NAME = "scalability"
DEFAULT_NETWORKS = "ieee33,swiss161"
#: The full size's budget beyond ``p2pvar train``'s defaults (12 validation and 12 test
#: days: the references are an optimum, an MPC and a grid-only run per day and network).
FULL_BUDGET: dict[str, Any] = {"val_days": 12, "test_days": 12}


def add_args(parser: argparse.ArgumentParser) -> None:
    """``--networks``, ``--algos``, ``--seeds`` and the training flags."""
    parser.add_argument(
        "--networks",
        default=DEFAULT_NETWORKS,
        help=f"comma-separated networks (default: {DEFAULT_NETWORKS})",
    )
    learners.add_args(parser, algos="ea-matd3,matd3", seeds="0")


def specs(args: argparse.Namespace) -> list[RunSpec]:
    """Every network, learner and seed, and the references of every day played."""
    base = learners.base_config(args, FULL_BUDGET)
    networks = list(dict.fromkeys(n.strip() for n in args.networks.split(",") if n.strip()))
    if not networks:
        raise ConfigError(f"networks={args.networks!r} must name at least one network")
    return [  # the references first: short, and every table needs them
        *learners.reference_specs(base, networks),
        *learners.training_specs(base, networks, args.algos, args.seeds),
    ]


def analyse(out: Path, runs: Sequence[RunSpec], args: argparse.Namespace) -> list[Path]:
    """The tables (per learner beside its network's size and message volume) and curves."""
    return learners.analyse(out, runs, NAME, with_messages=True)


#: The study, as :data:`abm.study.registry.STUDIES` lists it.
STUDY = Study(
    NAME,
    "the learners on swiss161 (all prosumers) beside ieee33",
    add_args,
    specs,
    analyse,
    __doc__,
)
