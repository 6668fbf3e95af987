"""``p2pvar bench deploy``: one process per agent over ipc and tcp, beside the in-process model.

For each clearing protocol the multi market runs with the rule policy: deployed over ipc and
over tcp (loopback), over ipc without batch and bundle frames (each message its own frame), and
in-process (Mesa) in the same run as the baselines. Figures: median and 90th-percentile
interval latency (ms), intervals per second, messages, deliveries, frames and bytes per
interval (every process's sends, acks and heartbeats included). A scaling sweep deploys
scenarios with fewer prosumers (over ipc) to show how messages per interval grow with the
number of prosumers for each protocol.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

from abm.cli.commands.output import emit
from abm.config import Market, SimConfig
from abm.errors import ConfigError
from agents.clearing import PROTOCOLS

#: Prosumer counts of the default scaling sweep (the full network is added).
DEFAULT_SIZES = "4,8,16"


#: Top-level figures of the JSON output, taken from the auction protocol's run.
HEADLINE_KEYS = (
    "interval_ms_ipc",
    "interval_ms_ipc_unbatched",
    "interval_ms_tcp",
    "interval_ms_inprocess",
    "msgs_per_interval",
    "bytes_per_interval",
)


def _sizes(text: str) -> list[int]:
    try:
        sizes = sorted({int(s) for s in text.split(",") if s.strip()})
    except ValueError:
        raise ConfigError(f"sizes={text!r} must be comma-separated integers") from None
    if any(n < 2 for n in sizes):
        raise ConfigError(f"sizes={text!r}: every size must be at least 2 prosumers")
    return sizes


def inprocess_interval_ms(config: SimConfig) -> tuple[float, float]:
    """Median wall time of one in-process interval (ms) and the intervals per second."""
    from abm.sim.model import MarketModel

    model = MarketModel(config)
    model.step()  # warm-up (first-call costs)
    times = []
    start = time.perf_counter()
    while not model.done:
        t0 = time.perf_counter()
        model.step()
        times.append((time.perf_counter() - t0) * 1000)
    elapsed = time.perf_counter() - start
    return statistics.median(times), len(times) / elapsed


def scenario_with(network: str, n_prosumers: int, path: Path) -> tuple[Path, int]:
    """Write the default scenario of ``network`` restricted to ``n_prosumers`` prosumers."""
    from abm.inputs.scenario import ScenarioOptions, save_scenario, scenario_for
    from dso.networks import load_network

    feeder = load_network(network)
    full = len(scenario_for(feeder).prosumers)
    n = min(n_prosumers, full)
    scenario = scenario_for(feeder, options=ScenarioOptions(prosumer_fraction=n / full))
    return save_scenario(scenario, path), len(scenario.prosumers)


def deployed(
    config: SimConfig,
    transport: Literal["ipc", "tcp"],
    out: Path,
    *,
    progress: bool = False,
    batch: bool = True,
) -> dict[str, float]:
    """Deploy ``config`` and return its interval figures (``progress``: a line and a bar;
    ``batch=False``: every message in its own frame, no batches or bundles)."""
    from abm.deploy.launcher import deploy
    from abm.deploy.spec import DeployOptions, Transport

    if progress:
        print(f"deploying {config.protocol} over {transport} ({out.name}) ...", file=sys.stderr)
    options = DeployOptions(transport=Transport(transport), batch_frames=batch)
    result = deploy(config, options, out, progress=progress)
    timing = result.tables["timing"]
    n = len(timing)
    span_s = timing["start_ms"].iloc[-1] / 1000 if n > 1 else 0.0
    msgs = result.tables["messages"]
    msgs = msgs[msgs["interval"] >= 0]
    return {
        "interval_ms": float(timing["wall_ms"].median()),
        "interval_ms_p90": float(timing["wall_ms"].quantile(0.9)),
        "intervals_per_s": (n - 1) / span_s if span_s > 0 else 0.0,
        "msgs_per_interval": float(msgs["messages"].sum() / n),
        "deliveries_per_interval": float(msgs["deliveries"].sum() / n),
        "frames_per_interval": float(msgs["frames"].sum() / n),
        "bytes_per_interval": float(msgs["bytes"].sum() / n),
        "startup_ms_median": float(result.summary["startup_ms_median"]),
        "prosumers": len(result.tables["processes"]) - 1,
    }


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``bench deploy``."""
    parser = sub.add_parser(
        "deploy",
        help="multi-process deployment (ipc, tcp) beside the in-process model",
        description=__doc__.split("\n\n", 1)[1].replace("\n", " "),
    )
    parser.add_argument("--network", default="ieee33", help="network name or JSON path")
    parser.add_argument("--days", type=int, default=1, help="days per run (default: 1)")
    parser.add_argument(
        "--prosumers",
        type=int,
        default=None,
        help="run the main figures with this many prosumers (default: all of the network)",
    )
    parser.add_argument(
        "--sizes",
        default=DEFAULT_SIZES,
        help=f"prosumer counts of the scaling sweep, besides the full network "
        f"(default: {DEFAULT_SIZES}; '' to skip)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress lines")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print its figures."""
    sizes = _sizes(args.sizes)
    progress = not args.no_progress
    base = SimConfig(network=args.network, market=Market.MULTI, policy="rule", days=args.days)
    result: dict[str, Any] = {"network": args.network, "days": args.days}
    scaling: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="p2pvar-bench-") as tmp:
        tmp_dir = Path(tmp)
        if args.prosumers is not None:
            path, _ = scenario_with(args.network, args.prosumers, tmp_dir / "scenario.json")
            base = dataclasses.replace(base, scenario=str(path))
        for protocol in PROTOCOLS:
            config = dataclasses.replace(base, protocol=protocol)
            ipc = deployed(config, "ipc", tmp_dir / f"{protocol}-ipc", progress=progress)
            unbatched = deployed(
                config, "ipc", tmp_dir / f"{protocol}-ipc-unbatched", progress=progress, batch=False
            )
            tcp = deployed(config, "tcp", tmp_dir / f"{protocol}-tcp", progress=progress)
            inproc_ms, inproc_rate = inprocess_interval_ms(config)
            result["prosumers"] = ipc["prosumers"]
            result[protocol] = {
                "interval_ms_ipc": ipc["interval_ms"],
                "interval_ms_tcp": tcp["interval_ms"],
                "interval_ms_inprocess": inproc_ms,
                "interval_ms_p90_ipc": ipc["interval_ms_p90"],
                "interval_ms_p90_tcp": tcp["interval_ms_p90"],
                "intervals_per_s_ipc": ipc["intervals_per_s"],
                "intervals_per_s_tcp": tcp["intervals_per_s"],
                "intervals_per_s_inprocess": inproc_rate,
                "interval_ms_ipc_unbatched": unbatched["interval_ms"],
                "batch_speedup_ipc": unbatched["interval_ms"] / ipc["interval_ms"],
                "msgs_per_interval": ipc["msgs_per_interval"],
                "deliveries_per_interval": ipc["deliveries_per_interval"],
                "frames_per_interval": ipc["frames_per_interval"],
                "frames_per_interval_unbatched": unbatched["frames_per_interval"],
                "bytes_per_interval": ipc["bytes_per_interval"],
                "startup_ms_median": ipc["startup_ms_median"],
            }
            for size in sizes:
                path, n = scenario_with(args.network, size, tmp_dir / f"scenario-{size}.json")
                small = dataclasses.replace(config, scenario=str(path))
                figures = deployed(small, "ipc", tmp_dir / f"{protocol}-{n}", progress=progress)
                scaling.append({"protocol": protocol, **_scaling_row(n, figures)})
            scaling.append({"protocol": protocol, **_scaling_row(int(ipc["prosumers"]), ipc)})
    result["scaling"] = scaling
    # Headline keys (the auction protocol, as the target is stated) at the top level.
    headline = {key: result["auction"][key] for key in HEADLINE_KEYS}
    result = {"network": result["network"], "days": result["days"], **headline, **result}
    if args.json:
        emit(result, True)
    else:
        emit(_flat(result), False, title="deploy benchmark (one process per agent)")
    return 0


def _scaling_row(n: int, figures: dict[str, float]) -> dict[str, Any]:
    keys = (
        "msgs_per_interval",
        "deliveries_per_interval",
        "frames_per_interval",
        "bytes_per_interval",
        "interval_ms",
    )
    return {"prosumers": n, **{k: figures[k] for k in keys}}


def _flat(result: dict[str, Any]) -> dict[str, Any]:
    """One line per figure for the table output."""
    flat: dict[str, Any] = {}
    for key, value in result.items():
        if isinstance(value, dict):
            flat.update({f"{key} {k}": v for k, v in value.items()})
        elif key == "scaling":
            for row in value:
                head = f"scaling {row['protocol']} n={row['prosumers']}"
                flat[f"{head} msgs/deliveries/frames/bytes per interval"] = (
                    f"{row['msgs_per_interval']:.1f} / {row['deliveries_per_interval']:.1f} / "
                    f"{row['frames_per_interval']:.1f} / {row['bytes_per_interval']:.0f}"
                )
                flat[f"{head} interval_ms"] = row["interval_ms"]
        else:
            flat[key] = value
    return flat
