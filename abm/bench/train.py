"""``p2pvar bench train``: population rollouts and learner updates beside per-agent loops."""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from abm.bench.env import add_market_bench_args, check_market_bench_args, fresh_cache
from abm.cli.commands.output import emit
from abm.config import DaySet, Market, SimConfig
from agents.interval import EPISODE_INTERVALS

#: Teams of a population rollout: EA-MATD3's default population of 10 and the learner.
TEAMS = 11
#: Worlds per team (11 x 23 = 253 worlds, about the best batch of ``bench env``).
WORLDS_PER_TEAM = 23
#: Default seconds each figure is timed for.
TIME_BUDGET_S = 3.0


def bench_train(
    network: str,
    market: Market,
    *,
    n_days: int = 2,
    teams: int = TEAMS,
    worlds_per_team: int = WORLDS_PER_TEAM,
    seed: int = 0,
    budget_s: float = TIME_BUDGET_S,
    torch_threads: int = 1,
) -> dict[str, Any]:
    """Environment steps per second (one interval of one world) of a population rollout of
    ``teams`` teams with ``worlds_per_team`` worlds each on
    :class:`abm.envs.vec_env.MarketVecEnv` (one batched environment, all actors in one
    stacked pass) beside the same rollout as a naive loop (one world at a time, each
    prosumer's actor its own torch module called in turn); and updates per second of the
    MATD3 update of all prosumers beside a loop over prosumers
    (:func:`abm.bench.learners.bench_updates`), with the market's sizes. Every figure and
    its baseline are timed in alternation in the same run, with ``torch_threads`` torch
    threads for both (1: as when several runs share the cores; a lone ``p2pvar train`` uses
    torch's default, one per core)."""
    import torch

    from abm.bench.learners import bench_updates, per_agent_actors
    from abm.bench.timing import interleaved_rates
    from abm.envs.vec_env import MarketVecEnv
    from agents.learning.env_protocol import EnvDims
    from agents.learning.matd3 import MATD3Config
    from agents.learning.networks import StackedMLP
    from agents.learning.rollout import run_episode, team_actions
    from agents.learning.seeding import seeded_generator

    torch.set_num_threads(torch_threads)
    config = SimConfig(network=network, market=market, day_set=DaySet.TRAIN)
    with tempfile.TemporaryDirectory() as tmp:
        cache, days, build_s = fresh_cache(config, n_days, Path(tmp))
        n_worlds = teams * worlds_per_team
        env = MarketVecEnv(n_worlds, config, cache=cache)
        single = MarketVecEnv(1, config, cache=cache)
        sizes = (env.obs_dim, *MATD3Config().actor_hidden, env.action_dim)
        population = StackedMLP(
            (teams, env.n_agents), sizes, tanh_output=True, generator=seeded_generator(seed)
        )
        params = [p.detach() for p in population.params()]
        loop_actors = per_agent_actors(params)
        world_days = [days[k % n_days] for k in range(worlds_per_team)] * teams
        worlds = itertools.cycle(range(n_worlds))

        def batched() -> int:
            run_episode(env, lambda obs: team_actions(params, obs), seed=seed, days=world_days)
            return n_worlds * EPISODE_INTERVALS

        def loop() -> int:
            world = next(worlds)
            team = loop_actors[world // worlds_per_team]
            obs, _ = single.reset(seed, [world_days[world]])
            done = False
            while not done:
                with torch.no_grad():
                    actions = [actor(torch.from_numpy(obs[0, i])) for i, actor in enumerate(team)]
                obs, _, _, dones, _ = single.step(torch.stack(actions)[None].numpy())
                done = bool(np.all(dones))
            return EPISODE_INTERVALS

        rollouts = interleaved_rates({"batched": batched, "loop": loop}, budget_s)
        updates = bench_updates(EnvDims.of(env), budget_s)
    rollout, rollout_loop = rollouts["batched"], rollouts["loop"]
    return {
        "network": network,
        "market": str(market),
        "n_agents": env.n_agents,
        "teams": teams,
        "worlds": n_worlds,
        "torch_threads": torch_threads,
        "cache_build_s": build_s,
        "rollout_env_steps_per_s": rollout.per_s,
        "rollout_env_steps_per_s_loop": rollout_loop.per_s,
        "speedup_rollout_vs_loop": rollout.per_s / rollout_loop.per_s,
        "rollout_env_steps_per_cpu_s": rollout.per_cpu_s,
        "rollout_env_steps_per_cpu_s_loop": rollout_loop.per_cpu_s,
        "speedup_rollout_vs_loop_cpu": rollout.per_cpu_s / rollout_loop.per_cpu_s,
        **updates,
        "load_average_1min": os.getloadavg()[0],
    }


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``bench train``."""
    parser = sub.add_parser(
        "train",
        help="population rollouts and learner updates beside per-agent loops (needs torch)",
        description="Environment steps per second of a population rollout (all teams' "
        "worlds in one vectorised environment, all actors in one stacked pass) and MATD3 "
        "updates per second of all prosumers, each beside a naive loop over worlds and "
        "prosumers timed in the same run. Needs torch: pip install -e '.[train]'.",
    )
    add_market_bench_args(parser, seed_help="seed of the actors' weights", seconds=TIME_BUDGET_S)
    parser.add_argument("--teams", type=int, default=TEAMS, help="teams of the population")
    parser.add_argument(
        "--worlds-per-team", type=int, default=WORLDS_PER_TEAM, help="worlds of each team"
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch threads of the batched code and its loop alike (default: 1, as when runs "
        "share the cores; a lone p2pvar train uses one per core)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print its figures."""
    check_market_bench_args(args, "teams", "worlds_per_team", "torch_threads")
    import agents.learning  # noqa: F401 - without torch: the one-line install hint

    result = bench_train(
        args.network,
        args.market,
        n_days=args.days,
        teams=args.teams,
        worlds_per_team=args.worlds_per_team,
        seed=args.seed,
        budget_s=args.seconds,
        torch_threads=args.torch_threads,
    )
    emit(result, args.json, title="training benchmark (batched beside a per-agent loop)")
    return 0
