"""``p2pvar bench policy``: the wall time of a whole ``simulate`` run per policy, in one run.

Each policy simulates the same days in this process (no output written), one after the other;
the first (default ``tou``, the ToU rule) is the baseline every other policy's wall time (and
CPU time of this process, which other jobs on a shared machine move less) is divided by. For
an MPC policy it also prints the median and 95th percentile of one prosumer's decision
(forecast, LP build and HiGHS solve) and the fallbacks to the ToU rule; for every policy the
prosumers' cost, the voltage violations and the DSO's lowest net of an interval.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Mapping

import numpy as np

from abm.cli.commands.output import emit
from abm.config import SimConfig
from abm.errors import ConfigError
from agents.policy import Observation, Policy
from agents.policy_registry import parse_policy, policy_maker

DEFAULT_POLICIES = "tou,mpc"


def _timed_acts(policies: Mapping[str, Policy]) -> list[float]:
    """Wrap every policy's ``act`` (on the object itself, so the prosumer still finds the
    policy's other attributes) to record its wall time; return the list the times go to."""
    times: list[float] = []

    def timed(act: Callable[[Observation], np.ndarray]) -> Callable[[Observation], np.ndarray]:
        def wrapper(obs: Observation) -> np.ndarray:
            start = time.perf_counter()
            out = act(obs)
            times.append(time.perf_counter() - start)
            return out

        return wrapper

    for policy in policies.values():
        setattr(policy, "act", timed(policy.act))  # noqa: B010 - mypy: a method assignment
    return times


def run_policy(config: SimConfig) -> dict[str, float]:
    """Simulate ``config`` (its policy) in process; wall time and the policy's own figures."""
    from abm.inputs.run_inputs import agent_rngs, build_run_inputs
    from abm.sim.model import MarketModel
    from analysis.metrics import summarize

    start, cpu_start = time.perf_counter(), time.process_time()
    world = build_run_inputs(config)
    rngs = agent_rngs(config.seed, len(world.prosumer_ids))
    make = policy_maker(config.policy, world)
    policies = {pid: make(i, rngs[i]) for i, pid in enumerate(world.prosumer_ids)}
    times = _timed_acts(policies)
    model = MarketModel(config, world=world, policies=policies)
    while not model.done:
        model.step()
    wall_s, cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
    summary = summarize(model.tables(), world.duration_h)
    return {
        "wall_s": wall_s,
        "cpu_s": cpu_s,
        "act_ms_p50": float(np.median(times) * 1000),
        "act_ms_p95": float(np.percentile(times, 95) * 1000),
        "prosumer_cost_eur": summary["prosumer_cost_eur"],
        "policy_fallbacks": summary["policy_fallbacks"],
        "voltage_violations": summary["voltage_violations"],
        "dso_net_min_interval_eur": summary["dso_net_min_interval_eur"],
    }


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``bench policy``."""
    parser = sub.add_parser(
        "policy",
        help="simulate wall time per policy (the MPC beside the ToU rule), in one run",
        description="Simulate the same days with each policy in this process; the first "
        "policy is the baseline (ratio = wall time / the baseline's).",
    )
    parser.add_argument("--network", default="ieee33", help="network name or JSON path")
    parser.add_argument("--days", type=int, default=73, help="test days (from the 1st)")
    parser.add_argument(
        "--policies", default=DEFAULT_POLICIES, help="comma-separated; the first is the baseline"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print its figures."""
    policies = [
        parse_policy(p.strip(), ConfigError).text for p in args.policies.split(",") if p.strip()
    ]
    if len(policies) < 2:
        raise ConfigError(f"policies={args.policies!r}: name a baseline and one more policy")
    result: dict[str, float | int | str] = {"network": args.network, "days": args.days}
    base: dict[str, float] = {}
    for policy in policies:
        figures = run_policy(SimConfig(network=args.network, policy=policy, days=args.days))
        base = base or figures
        result |= {f"{policy}_{key}": value for key, value in figures.items()}
        result[f"{policy}_ratio_vs_{policies[0]}"] = figures["wall_s"] / base["wall_s"]
        result[f"{policy}_cpu_ratio_vs_{policies[0]}"] = figures["cpu_s"] / base["cpu_s"]
    emit(result, args.json, title=f"policy benchmark ({args.network}, {args.days} days, multi)")
    return 0
