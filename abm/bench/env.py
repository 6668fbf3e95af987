"""``p2pvar bench env``: vectorised environment steps per second beside the PettingZoo env."""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from abm.bench.timing import rate_until
from abm.cli.commands.output import emit
from abm.config import DaySet, Market, SimConfig
from abm.errors import ConfigError

if TYPE_CHECKING:
    from abm.envs.publication_cache import PublicationCache

#: World counts of the vectorised environment.
BATCH_SIZES = (1, 16, 64, 256)
#: Default seconds each figure is timed for (whole episodes or intervals, at least one).
TIME_BUDGET_S = 2.0


def fresh_cache(
    config: SimConfig, n_days: int, directory: Path
) -> tuple[PublicationCache, list[int], float]:
    """A publication cache in ``directory`` holding the first ``n_days`` training days of
    ``config``'s market: the cache, those days and the seconds their computation took."""
    from abm.envs.publication_cache import PublicationCache
    from abm.envs.vec_env import MarketVecEnv

    env = MarketVecEnv(1, config)
    cache = PublicationCache(env.cache_key, env.compute_day, directory)
    days = [int(d) for d in env.train_days[:n_days]]
    start = time.perf_counter()
    for day in days:
        cache.day(day)
    return cache, days, time.perf_counter() - start


def bench_env(
    network: str, market: Market, n_days: int, seed: int = 0, budget_s: float = TIME_BUDGET_S
) -> dict[str, Any]:
    """Steps per second (one step: one interval of one world, all prosumers) of
    :class:`abm.envs.vec_env.MarketVecEnv` for each of :data:`BATCH_SIZES` worlds and of
    the PettingZoo/Mesa environment, same market, same run. The worlds cycle over the first
    ``n_days`` training days, whose publications are computed into a fresh cache directory
    first (``cache_build_s``); the PettingZoo env computes them every interval, as the
    agent simulation does."""
    from abm.envs.pettingzoo_env import MarketParallelEnv
    from abm.envs.vec_env import MarketVecEnv

    config = SimConfig(network=network, market=market, day_set=DaySet.TRAIN)
    rng = np.random.default_rng(seed)
    result: dict[str, Any] = {"network": network, "market": market, "n_days": n_days}
    with tempfile.TemporaryDirectory() as tmp:
        cache, days, result["cache_build_s"] = fresh_cache(config, n_days, Path(tmp))
        result["cache_bytes_per_day"] = cache.size_bytes() / n_days
        rates: dict[int, tuple[float, float]] = {}
        for b in BATCH_SIZES:
            env = MarketVecEnv(b, config, cache=cache)
            actions = rng.uniform(-1, 1, (24, b, env.n_agents, 4)).astype(np.float32)
            world_days = [days[k % n_days] for k in range(b)]

            def episode(env: MarketVecEnv = env, a: np.ndarray = actions, d=world_days) -> int:
                env.reset(seed, d)
                for t in range(env.n_intervals):
                    env.step(a[t])
                return env.n_intervals * env.n_worlds

            rates[b] = rate_until(episode, budget_s)
            result[f"env_steps_per_s_b{b}"] = rates[b][0]
    best = max(BATCH_SIZES, key=lambda b: rates[b][0])
    result["env_steps_per_s"], result["env_steps_per_cpu_s"] = rates[best]
    mesa = MarketParallelEnv(config)
    mesa.reset(seed=seed)

    def interval() -> int:
        if not mesa.agents:
            mesa.reset()
        mesa.step({pid: rng.uniform(-1, 1, 4).astype(np.float32) for pid in mesa.agents})
        return 1

    result["env_steps_per_s_mesa"], result["env_steps_per_cpu_s_mesa"] = rate_until(
        interval, budget_s
    )
    result["speedup_vs_mesa"] = result["env_steps_per_s"] / result["env_steps_per_s_mesa"]
    result["speedup_vs_mesa_cpu"] = (
        result["env_steps_per_cpu_s"] / result["env_steps_per_cpu_s_mesa"]
    )
    result["load_average_1min"] = os.getloadavg()[0]
    return result


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``bench env``."""
    parser = sub.add_parser(
        "env",
        help="vectorised training environment against the PettingZoo/Mesa environment",
        description="Environment steps per second (one interval of one world) of the "
        f"vectorised environment for {', '.join(map(str, BATCH_SIZES))} worlds and of the "
        "PettingZoo/Mesa environment in the same run, random actions; and the time to "
        "build the envelope and Var price cache of the days used.",
    )
    add_market_bench_args(parser, seed_help="seed of the random actions")
    parser.set_defaults(func=run)


def add_market_bench_args(
    parser: argparse.ArgumentParser, seed_help: str, seconds: float = TIME_BUDGET_S
) -> None:
    """The flags of a benchmark on the market's training days (checked by
    :func:`check_market_bench_args`)."""
    parser.add_argument("--network", default="ieee33", help="network name or file")
    parser.add_argument("--market", default="multi", choices=list(Market), help="market mode")
    parser.add_argument("--days", type=int, default=2, help="distinct training days used")
    parser.add_argument("--seed", type=int, default=0, help=seed_help)
    parser.add_argument("--seconds", type=float, default=seconds, help="time budget of each figure")
    parser.add_argument("--json", action="store_true", help="print JSON")


def check_market_bench_args(args: argparse.Namespace, *positive: str) -> None:
    """Refuse a non-positive ``--days``, ``--seconds`` or other ``positive`` count."""
    for name in ("days", *positive):
        if getattr(args, name) < 1:
            raise ConfigError(f"{name} must be >= 1, got {getattr(args, name)}")
    if not args.seconds > 0:
        raise ConfigError(f"seconds must be > 0, got {args.seconds}")


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print its figures."""
    check_market_bench_args(args)
    result = bench_env(args.network, args.market, args.days, args.seed, args.seconds)
    emit(result, args.json, title="environment benchmark (interval-steps of one world per s)")
    return 0
