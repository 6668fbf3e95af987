"""``study overhead``: messages, bytes and interval latency against the number of prosumers.

Subsets of the Swiss feeder's prosumers (seeded, :class:`abm.inputs.scenario.ScenarioOptions`'s
``prosumer_fraction``), each clearing protocol, in-process (Mesa) and one process per agent
over ipc and tcp; the multi market with the rule policy for one day. Sizes: ``--quick`` 4, 8
and 16 prosumers, in-process and ipc; full 4-78 (all of swiss161) with tcp too. Outputs:
``overhead.csv``/``.md`` (one row per run: messages, deliveries and bytes per interval, the
median interval wall time), ``growth.csv``/``.md`` (the fitted log-log exponent of each
figure per protocol and backend) and ``overhead.png`` (log-log).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from abm.config import Market, SimConfig
from abm.errors import ConfigError
from abm.study.executor import Backend, RunSpec, run_dir_of
from abm.study.runs import Study, choice_list, write_table
from agents.clearing import PROTOCOLS

NAME = "overhead"
QUICK_SIZES = (4, 8, 16)
FULL_SIZES = (4, 8, 16, 32, 64, 78)
QUICK_BACKENDS = (Backend.IN_PROCESS, Backend.IPC)
FULL_BACKENDS = tuple(Backend)
METRICS = (
    ("messages_per_interval", "messages per interval"),
    ("deliveries_per_interval", "deliveries per interval"),
    ("bytes_per_interval", "bytes sent per interval (B)"),
    ("interval_ms", "interval wall time, median (ms)"),
)


def add_args(parser: argparse.ArgumentParser) -> None:
    """Network, sizes, backends, protocols, days, seed."""
    parser.add_argument("--network", default="swiss161", help="network (default: swiss161)")
    parser.add_argument("--sizes", default=None, help="comma-separated prosumer counts")
    parser.add_argument(
        "--backends", default=None, help=f"comma-separated: {', '.join(Backend)} (default: by size)"
    )
    parser.add_argument(
        "--protocols",
        default=",".join(PROTOCOLS),
        help=f"comma-separated clearing protocols (default: {','.join(PROTOCOLS)})",
    )
    parser.add_argument("--days", type=int, default=1, help="days per run (default: 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every run (default: 0)")


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(sorted({int(s) for s in text.split(",") if s.strip()}))
    except ValueError:
        raise ConfigError(f"sizes={text!r} must be comma-separated integers") from None
    if not sizes or sizes[0] < 2:
        raise ConfigError(f"sizes={text!r}: every size must be at least 2 prosumers")
    return sizes


def specs(args: argparse.Namespace) -> list[RunSpec]:
    """One run per size, protocol and backend."""
    sizes = _sizes(args.sizes) if args.sizes else (QUICK_SIZES if args.quick else FULL_SIZES)
    backends = (
        choice_list(Backend, "backends", args.backends)
        if args.backends
        else (QUICK_BACKENDS if args.quick else FULL_BACKENDS)
    )
    out = []
    for protocol in choice_list(PROTOCOLS, "protocols", args.protocols):
        config = SimConfig(
            network=args.network, market=Market.MULTI, policy="rule", protocol=protocol,
            days=args.days, seed=args.seed,
        )  # fmt: skip
        for backend in backends:
            for n in sizes:
                out.append(
                    RunSpec(
                        f"{protocol}-{backend}-n{n}", config, backend=backend, prosumers=n,
                        labels={"protocol": str(protocol), "backend": str(backend),
                                "prosumers": n},
                    )
                )  # fmt: skip
    return out


def overhead_row(out: Path, spec: RunSpec) -> dict[str, object]:
    """A run's messages, deliveries and bytes per interval and its median interval time."""
    import pandas as pd

    run_dir = run_dir_of(out, spec)
    messages = pd.read_csv(run_dir / "messages.csv")
    messages = messages[messages["interval"] >= 0]  # deploy's start-up traffic is interval -1
    intervals = pd.read_csv(run_dir / "intervals.csv", usecols=["interval"])
    n = max(len(intervals), 1)
    if spec.backend == Backend.IN_PROCESS:
        status = pd.read_json(run_dir / "status.json", typ="series")
        interval_ms = float(status["interval_ms_median"])
    else:
        interval_ms = float(pd.read_csv(run_dir / "timing.csv")["wall_ms"].median())
    return {
        **spec.labels,
        "intervals": len(intervals),
        "messages_per_interval": float(messages["messages"].sum() / n),
        "deliveries_per_interval": float(messages["deliveries"].sum() / n),
        "bytes_per_interval": float(messages["bytes"].sum() / n),
        "interval_ms": interval_ms,
    }


def analyse(out: Path, runs: Sequence[RunSpec], args: argparse.Namespace) -> list[Path]:
    """The overhead and growth tables and the log-log plot."""
    import pandas as pd

    from analysis.studies import growth_exponents
    from analysis.study_plots import plot_overhead

    frame = pd.DataFrame([overhead_row(out, s) for s in runs])
    frame = frame.sort_values(["protocol", "backend", "prosumers"])
    outputs = write_table(frame, out, "overhead", index=False)
    growth = growth_exponents(
        frame, size="prosumers", metrics=[m for m, _ in METRICS], by=["protocol", "backend"]
    )
    outputs += write_table(growth, out, "growth", index=False)
    outputs.append(plot_overhead(frame, METRICS, out / "overhead.png"))
    print(outputs[3].read_text())
    return outputs


#: The study, as :data:`abm.study.registry.STUDIES` lists it.
STUDY = Study(
    NAME, "messages, bytes and latency vs number of prosumers", add_args, specs, analyse, __doc__
)
