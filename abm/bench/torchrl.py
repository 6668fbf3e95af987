"""``p2pvar bench torchrl``: the TorchRL wrapper (:mod:`abm.envs.torchrl_env`) beside stepping
:class:`abm.envs.vec_env.MarketVecEnv` directly, same worlds, days and actions, same run."""

from __future__ import annotations

import argparse
import os
from typing import Any

import numpy as np

from abm.bench.env import add_market_bench_args, check_market_bench_args
from abm.bench.timing import interleaved_rates
from abm.cli.commands.output import emit
from abm.config import DaySet, Market, SimConfig
from abm.envs.extra import require_torchrl

#: Default worlds stepped together (``p2pvar train``'s default).
WORLDS = 44


def bench_torchrl(
    network: str, market: Market, n_days: int, worlds: int, seed: int, seconds: float
) -> dict[str, Any]:
    """Environment steps per second (one interval of one world) of whole episodes (24 steps
    and a reset, random actions drawn beforehand) through :class:`MarketTorchEnv` as a
    collector steps it (``step_and_maybe_reset``, which resets after the day's last step)
    and through ``MarketVecEnv.reset`` and ``step``, taking
    turns (:func:`abm.bench.timing.interleaved_rates`); ``overhead``: direct over wrapped
    rate (1.0: no overhead)."""
    import torch
    from torchrl.envs.utils import check_env_specs

    from abm.envs.torchrl_env import GROUP, MarketTorchEnv
    from abm.envs.vec_env import MarketVecEnv

    torch.set_num_threads(1)
    config = SimConfig(network=network, market=market, day_set=DaySet.TRAIN)
    vec = MarketVecEnv(worlds, config)
    days = [int(vec.train_days[k % n_days]) for k in range(worlds)]
    wrapped = MarketTorchEnv(MarketVecEnv(worlds, config, cache=vec.cache), days=days)
    check_env_specs(wrapped)
    steps = vec.n_intervals
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1, 1, (steps, worlds, vec.n_agents, vec.action_dim))
    actions = actions.astype(np.float32)
    tensors = torch.from_numpy(actions)

    def direct() -> int:
        vec.reset(seed, days)
        for t in range(steps):
            vec.step(actions[t])
        return steps * worlds

    carried = [wrapped.reset()]  # as a collector: the last step of a day resets the worlds

    def through_torchrl() -> int:
        td = carried[0]
        for t in range(steps):
            td.set((GROUP, "action"), tensors[t])
            _, td = wrapped.step_and_maybe_reset(td)
        carried[0] = td
        return steps * worlds

    rates = interleaved_rates({"direct": direct, "torchrl": through_torchrl}, seconds)
    return {
        "network": network,
        "market": market,
        "worlds": worlds,
        "n_days": n_days,
        "check_env_specs": "passed",
        "env_steps_per_s_direct": rates["direct"].per_s,
        "env_steps_per_s_torchrl": rates["torchrl"].per_s,
        "env_steps_per_cpu_s_direct": rates["direct"].per_cpu_s,
        "env_steps_per_cpu_s_torchrl": rates["torchrl"].per_cpu_s,
        "overhead": rates["direct"].per_s / rates["torchrl"].per_s,
        "overhead_cpu": rates["direct"].per_cpu_s / rates["torchrl"].per_cpu_s,
        "load_average_1min": os.getloadavg()[0],
    }


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``bench torchrl``."""
    parser = sub.add_parser(
        "torchrl",
        help="the TorchRL environment against stepping the vectorised env directly",
        description="Checks the TorchRL environment's specs (check_env_specs) and times "
        "whole episodes through it and through MarketVecEnv.step in turns, same worlds, "
        "days and random actions; prints both rates and their ratio. Needs the torchrl extra.",
    )
    add_market_bench_args(parser, seed_help="seed of the random actions", seconds=6.0)
    parser.add_argument("--worlds", type=int, default=WORLDS, help="worlds stepped together")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print its figures."""
    check_market_bench_args(args, "worlds")
    require_torchrl("bench torchrl")
    result = bench_torchrl(
        args.network, args.market, args.days, args.worlds, args.seed, args.seconds
    )
    emit(result, args.json, title="TorchRL wrapper against MarketVecEnv (env steps per s)")
    return 0
