"""The one timing module of the benchmarks: rates and medians, each beside an in-run baseline.

Every ``p2pvar bench`` target times its subject and its baseline with these functions, so a
figure and its baseline are measured the same way (warm-up first, then wall and CPU clocks).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple


class Rate(NamedTuple):
    """Units of work per wall-clock second and per CPU second of the process (the latter
    less sensitive to other jobs on a shared machine)."""

    per_s: float
    per_cpu_s: float


class _Timed(NamedTuple):
    units: float
    wall_s: float
    cpu_s: float


def _timed(run: Callable[[], int], budget_s: float) -> _Timed:
    """Call ``run`` (it returns the units it did) until ``budget_s`` seconds have passed (at
    least once): the units done, the wall-clock and the CPU seconds taken."""
    units, start, cpu_start = 0, time.perf_counter(), time.process_time()
    while True:
        units += run()
        elapsed = time.perf_counter() - start
        if elapsed >= budget_s:
            return _Timed(units, elapsed, max(time.process_time() - cpu_start, 1e-9))


def rate_until(run: Callable[[], int], budget_s: float) -> Rate:
    """Rate of ``run`` (a call returns the units it did), called until ``budget_s`` seconds
    have passed (at least once). No warm-up: call it once before if first calls are slow."""
    done = _timed(run, budget_s)
    return Rate(done.units / done.wall_s, done.units / done.cpu_s)


def calls_per_s(fn: Callable[[], object], budget_s: float) -> float:
    """Calls per wall-clock second of ``fn`` over ``budget_s`` seconds, after one warm-up call."""
    fn()

    def one() -> int:
        fn()
        return 1

    return rate_until(one, budget_s).per_s


def interleaved_rates(
    runs: Mapping[str, Callable[[], int]], min_time_s: float, rounds: int = 3
) -> dict[str, Rate]:
    """Rate of each run (a call returns the units it did, e.g. 1 update or the steps of
    an episode): after one warm-up call each, the runs take turns in ``rounds`` rounds of
    at least ``min_time_s / rounds`` seconds (and one call) each, so a change in the
    machine's load hits them alike."""
    for run in runs.values():
        run()
    totals = {name: [0.0, 0.0, 0.0] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            done = _timed(run, min_time_s / rounds)
            for k, value in enumerate(done):
                totals[name][k] += value
    return {name: Rate(u / wall, u / cpu) for name, (u, wall, cpu) in totals.items()}


def median_s(fn: Callable[[], object], repeats: int, calls: int = 1) -> float:
    """Median over ``repeats`` of the time per call of ``calls`` back-to-back calls (s),
    after one warm-up call (caches and first-call costs are not timed)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - start) / calls)
    return statistics.median(times)


def interleaved_median_s(fns: Sequence[Callable[[], object]], repeats: int) -> list[float]:
    """Median time per call of each function, timed in turn (the same load for all), after
    one warm-up call each."""
    times: list[list[float]] = [[] for _ in fns]
    for fn in fns:
        fn()
    for _ in range(repeats):
        for fn, record in zip(fns, times, strict=True):
            start = time.perf_counter()
            fn()
            record.append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def median_us(samples_ns: Sequence[int]) -> float:
    """Median of nanosecond samples, in microseconds."""
    return statistics.median(samples_ns) / 1000.0
