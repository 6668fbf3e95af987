"""``p2pvar bench market``: simulated market intervals per second, in-process."""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

from abm.cli.commands.output import emit
from abm.config import Market, SimConfig
from agents.clearing import PROTOCOLS

#: Intervals per timed repetition (two days of hourly intervals).
BENCH_INTERVALS = 48
BENCH_REPEATS = 3


def _intervals_per_s(config: SimConfig) -> tuple[float, float, float, int]:
    """Median intervals/s over repeats, messages and bytes per interval, prosumer count."""
    from abm.inputs.run_inputs import build_run_inputs
    from abm.sim.model import MarketModel

    world = build_run_inputs(config)
    rates, msgs, nbytes = [], 0.0, 0.0
    for _ in range(BENCH_REPEATS):
        model = MarketModel(config, world=world)
        model.step()  # warm-up interval (first-call costs), not timed
        start = time.perf_counter()
        for _ in range(BENCH_INTERVALS - 1):
            model.step()
        rates.append((BENCH_INTERVALS - 1) / (time.perf_counter() - start))
        frame = model.datacollector.get_table_dataframe("messages")
        msgs = frame["messages"].sum() / BENCH_INTERVALS
        nbytes = frame["bytes"].sum() / BENCH_INTERVALS
    return statistics.median(rates), float(msgs), float(nbytes), len(world.prosumer_ids)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``bench market``."""
    parser = sub.add_parser(
        "market",
        help="market intervals per second for each clearing protocol (in-process)",
        description="Simulate 2 days of the multi market with the rule policy for each "
        "protocol; the grid-only market (no P2P, no Var) is measured in the same run as the "
        "baseline.",
    )
    parser.add_argument("--network", default="ieee33", help="network name or JSON path")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print its figures."""
    base = SimConfig(network=args.network, market=Market.MULTI, policy="rule", days=2)
    result: dict[str, float | int | str] = {"network": args.network}
    rates: dict[str, float] = {}
    for protocol in PROTOCOLS:
        rate, msgs, nbytes, n = _intervals_per_s(dataclasses.replace(base, protocol=protocol))
        result["prosumers"] = n
        result[f"intervals_per_s_{protocol}"] = rates[protocol] = rate
        result[f"msgs_per_interval_{protocol}"] = msgs
        result[f"bytes_per_interval_{protocol}"] = nbytes
    grid_rate, *_ = _intervals_per_s(dataclasses.replace(base, market=Market.GRID_ONLY))
    result["intervals_per_s_grid_only"] = grid_rate
    result["ratio_auction_vs_grid_only"] = rates["auction"] / grid_rate
    emit(result, args.json, title=f"market benchmark ({args.network}, multi market, rule policy)")
    return 0
