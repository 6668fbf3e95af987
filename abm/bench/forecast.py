"""``p2pvar bench forecast``: each forecaster's error on the test days, and its cost.

For every test day, prosumer and interval ``s`` of the day, each forecaster forecasts the rest of
the day from the prosumer's own past days and today's intervals up to ``s`` (as the MPC does at
``s``); the errors ``forecast - actual`` of the forecast intervals (``t > s``) give:

- ``mae``: the mean absolute error over every (s, t > s) pair (kW) and ``nmae`` that over the
  mean actual value;
- ``noon``: the MAE and bias (mean error) of the 12:00 interval, over the forecasts made before it;
- ``evening``: the same over the evening peak hours (:data:`EVENING_HOURS`, the default
  tariff's peak).

``ms_per_prosumer_interval``: the wall time of one forecaster call for one prosumer (load or PV),
as the MPC calls it. The baseline printed beside them is persistence.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from abm.cli.commands.output import emit
from abm.inputs.profiles import TEST_DAYS
from agents.forecast import FORECASTERS, LOOKBACK_DAYS, Forecaster

#: The hour of the noon figures and the evening peak hours (the default tariff's 0.32 EUR).
NOON_HOUR = 12
EVENING_HOURS = (17, 18, 19, 20)
#: Prosumers timed one by one (the MPC's call), to keep the timing short.
TIMED_PROSUMERS = 4


def forecast_errors(
    forecaster: Forecaster, year: np.ndarray, days: tuple[int, ...], hours_per_interval: float
) -> dict[str, float]:
    """The error figures (module docstring) of ``forecaster`` on ``year`` (``(365, T, N)``,
    kW) over the calendar ``days``."""
    steps = year.shape[1]
    issue, target = np.meshgrid(np.arange(steps), np.arange(steps), indexing="ij")
    ahead = target > issue  # (s, t): the forecast intervals
    hour = target * hours_per_interval
    noon = ahead & (np.floor(hour) == NOON_HOUR)
    evening = ahead & np.isin(np.floor(hour), EVENING_HOURS)
    sums = dict.fromkeys(("abs", "actual", "n", "noon_abs", "noon_err", "noon_n"), 0.0)
    sums |= dict.fromkeys(("evening_abs", "evening_err", "evening_n"), 0.0)
    for d in days:
        past = year[max(0, d - LOOKBACK_DAYS) : d]
        actual = year[d]
        made = np.stack([forecaster(past, actual, s + 1) for s in range(steps)])  # (s, t, N)
        err = made - actual[None]
        for name, mask in (("", ahead), ("noon_", noon), ("evening_", evening)):
            sums[name + "abs"] += float(np.abs(err[mask]).sum())
            sums[name + "n"] += float(err[mask].size)
            if name:
                sums[name + "err"] += float(err[mask].sum())
        sums["actual"] += float(np.broadcast_to(actual[None], err.shape)[ahead].sum())
    return {
        "mae_kw": sums["abs"] / sums["n"],
        "nmae": sums["abs"] / max(sums["actual"], 1e-12),
        "noon_mae_kw": sums["noon_abs"] / max(sums["noon_n"], 1.0),
        "noon_bias_kw": sums["noon_err"] / max(sums["noon_n"], 1.0),
        "evening_mae_kw": sums["evening_abs"] / max(sums["evening_n"], 1.0),
        "evening_bias_kw": sums["evening_err"] / max(sums["evening_n"], 1.0),
    }


def ms_per_call(forecaster: Forecaster, year: np.ndarray, days: tuple[int, ...]) -> float:
    """Median wall time (ms) of one call for one prosumer over ``days`` and every interval."""
    times = []
    for d in days:
        for k in range(min(TIMED_PROSUMERS, year.shape[2])):
            past, today = year[max(0, d - LOOKBACK_DAYS) : d, :, k : k + 1], year[d, :, k : k + 1]
            for s in range(year.shape[1]):
                start = time.perf_counter()
                forecaster(past, today, s + 1)
                times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``bench forecast``."""
    parser = sub.add_parser(
        "forecast",
        help="each forecaster's error (MAE, noon and evening bias) on the test days, and cost",
        description="Forecast every prosumer's load and PV at every interval of the test days "
        "with each forecaster (agents/forecast.py); persistence is the baseline.",
    )
    parser.add_argument("--network", default="ieee33", help="network name or JSON path")
    parser.add_argument("--days", type=int, default=len(TEST_DAYS), help="test days (from the 1st)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print its figures."""
    from abm.config import SimConfig
    from abm.inputs.mpc_policies import year_profiles
    from abm.inputs.run_inputs import resolve_scenario
    from dso.networks import load_network

    config = SimConfig(network=args.network)
    scenario = resolve_scenario(config, load_network(config.network))
    load, pv = year_profiles(scenario)
    days = TEST_DAYS[: args.days]
    result: dict[str, float | int | str] = {"network": args.network, "days": len(days)}
    for name, forecaster in FORECASTERS.items():
        for what, year in (("load", load), ("pv", pv)):
            figures = forecast_errors(forecaster, year, days, scenario.interval_min / 60)
            result |= {f"{name}_{what}_{key}": value for key, value in figures.items()}
        result[f"{name}_ms_per_prosumer_interval"] = ms_per_call(forecaster, load, days[:3])
    emit(result, args.json, title=f"forecasters on {len(days)} test days ({args.network})")
    return 0
