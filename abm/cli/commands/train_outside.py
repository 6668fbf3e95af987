"""``p2pvar train-outside``: BenchMARL's learners on the market (needs the ``torchrl`` extra)."""

from __future__ import annotations

import argparse

from abm.cli.args import add_config_args, config_from_args
from abm.cli.commands.output import add_out_args, emit
from abm.envs.extra import require_torchrl
from abm.training.train_config import OutsideAlgo, TrainRunConfig

#: Fields of ``p2pvar train`` a BenchMARL run has no use for.
_UNUSED = frozenset(
    {
        "algo", "minutes", "env_steps", "checkpoint_every", "checkpoint_buffer", "population",
        "learning_starts", "batch_size", "buffer_size",
    }
)  # fmt: skip


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``train-outside`` subcommand."""
    parser = sub.add_parser(
        "train-outside",
        help="train BenchMARL's MAPPO, IPPO, MADDPG or MASAC on the vectorised market",
        description="Train a BenchMARL learner on the market of `p2pvar train` (same "
        "environment, residual setting, training days and environment-step budget: "
        "--iterations rollouts of --worlds one-day worlds), evaluate it on the held-out days "
        "every --eval-every iterations and at the end as `p2pvar train` does; write "
        "OUT/metrics.csv, BenchMARL's CSV logs, one actor file per prosumer (OUT/actors/), "
        "OUT/config.json and OUT/summary.json. Needs pip install -e '.[torchrl]'.",
    )
    parser.add_argument(
        "--algo",
        dest="outside_algo",
        choices=[str(a) for a in OutsideAlgo],
        required=True,
        help="the learner",
    )
    add_config_args(parser, TrainRunConfig, exclude=_UNUSED)
    add_out_args(parser, required=True)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train, evaluate and print the held-out figures."""
    require_torchrl("train-outside", benchmarl=True)
    import torch

    from abm.training.outside import train_outside

    torch.set_num_threads(1)  # as the study executor: one thread per run on a shared machine
    config = config_from_args(TrainRunConfig, args)
    summary = train_outside(args.outside_algo, config, args.out, overwrite=args.overwrite)
    result = {
        "env_steps": summary["env_steps"],
        "train_s": summary["train_wall_s"],
        "eval_cost": summary["curve"]["eval_cost_last"],
        "held_out_cost_eur": summary["policy"]["cost_eur"],
        "tou_cost_eur": summary["tou"]["cost_eur"],
        "rule_cost_eur": summary["rule"]["cost_eur"],
        "voltage_violations": summary["policy"]["voltage_violations"],
    }
    emit(
        result,
        args.json,
        title=f"BenchMARL {args.outside_algo} on {config.network}, seed={config.seed}",
    )
    return 0
