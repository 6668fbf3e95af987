"""``p2pvar train-outside``: BenchMARL's learners on the market (needs the ``torchrl`` extra)."""

from __future__ import annotations

import argparse

from abm.cli.args import config_from_args
from abm.cli.commands.train import add_run_args, print_result
from abm.envs.extra import require_torchrl
from abm.training.outside import NOT_OUTSIDE, OutsideRunConfig


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``train-outside`` subcommand."""
    parser = sub.add_parser(
        "train-outside",
        help="train BenchMARL's MAPPO, IPPO, MADDPG or MASAC on the vectorised market",
        description="Train a BenchMARL learner as `p2pvar train` trains its own: the same "
        "market flags, residual setting, training days and environment-step budget "
        "(--iterations rollouts of --worlds one-day worlds, or --env-steps), the validation "
        "cost every --eval-every iterations and at the end, the team of the lowest one "
        "exported, the test days only with --test-days after training; write "
        "OUT/metrics.csv, BenchMARL's CSV logs, one actor file per prosumer (OUT/actors/, for "
        "--policy checkpoint:OUT and p2pvar evaluate), OUT/config.json and OUT/summary.json. "
        "Needs pip install -e '.[torchrl]'.",
    )
    add_run_args(parser, OutsideRunConfig, NOT_OUTSIDE)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train, evaluate and print the run's figures."""
    require_torchrl("train-outside", benchmarl=True)
    import torch

    from abm.training.benchmarl_run import train_outside

    torch.set_num_threads(1)  # as the study executor: one thread per run on a shared machine
    config = config_from_args(OutsideRunConfig, args)
    result = train_outside(config, args.out, overwrite=args.overwrite, summary=not args.no_summary)
    print_result(config, result, args)
    return 0
