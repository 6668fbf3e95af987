"""``p2pvar grid``: base-case summary of a feeder (size, load, AC power flow results)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from abm.cli.args import add_config_args, config_from_args
from abm.cli.commands.output import emit
from abm.errors import ConfigError


@dataclass(frozen=True)
class GridConfig:
    """What ``p2pvar grid`` summarises."""

    network: str = field(
        default="ieee33",
        metadata={"help": "built-in network (ieee33, swiss161) or a pandapower JSON file"},
    )

    def __post_init__(self) -> None:
        if not self.network.strip():
            raise ConfigError("network must not be empty")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``grid`` subcommand."""
    parser = sub.add_parser(
        "grid",
        help="base-case summary of a feeder: buses, lines, load, loss, voltages",
        description="Load a feeder, run its base-case AC power flow and print a summary.",
    )
    add_config_args(parser, GridConfig)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(func=run)


def grid_summary(network: str) -> dict[str, Any]:
    """Base-case figures of ``network`` (bus indices 0-based, names as in the source)."""
    from dso.networks import load_network
    from dso.powerflow import RadialPowerFlow

    feeder = load_network(network)
    result = RadialPowerFlow(feeder).solve(*feeder.base_injection())
    vm = result.vm_pu
    lo, hi = int(np.argmin(vm)), int(np.argmax(vm))
    worst_line = int(np.argmax(result.loading_percent))
    load_kw = float(feeder.load_p_kw.sum())
    return {
        "network": feeder.name,
        "vn_kv": feeder.vn_kv,
        "n_buses": feeder.n_bus,
        "n_lines": feeder.n_line - len(feeder.trafos),
        "n_transformers": len(feeder.trafos),
        "voltage_levels_kv": sorted(set(feeder.bus_vn_kv.tolist())),
        "n_loads": int(np.count_nonzero(feeder.load_p_kw)),
        "n_generator_buses": int(np.count_nonzero(feeder.gen_kwp)),
        "generation_kw": float(feeder.gen_p_kw.sum()),
        "substation_branches": int(feeder.branch_of_bus.max()) + 1,
        "slack_bus": feeder.slack_bus,
        "load_kw": load_kw,
        "load_kvar": float(feeder.load_q_kvar.sum()),
        "loss_kw": float(result.loss_kw),
        "loss_percent": float(result.loss_kw / load_kw * 100) if load_kw else 0.0,
        "vmin_pu": float(vm[lo]),
        "vmin_bus": lo,
        "vmin_bus_name": feeder.bus_names[lo],
        "vmax_pu": float(vm[hi]),
        "vmax_bus": hi,
        "vmax_bus_name": feeder.bus_names[hi],
        "max_loading_percent": float(result.loading_percent[worst_line]),
        "max_loading_line": feeder.line_names[worst_line],
        "max_loading_branch": feeder.branch_label(worst_line),
        "pf_iterations": result.iterations,
    }


def run(args: argparse.Namespace) -> int:
    """Print the summary of the chosen network."""
    config = config_from_args(GridConfig, args)
    summary = grid_summary(config.network)
    title = f"{summary['network']}: base case, AC power flow (bus indices 0-based)"
    emit(summary, args.json, title=title)
    return 0
