"""``p2pvar deploy``: the DSO and every prosumer as separate processes talking ZeroMQ."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from abm.cli.args import add_config_args, config_from_args
from abm.cli.commands.output import add_out_args, emit
from abm.config import SimConfig
from abm.deploy.spec import DeployOptions

if TYPE_CHECKING:
    from abm.deploy.launcher import Prepared


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``deploy`` subcommand."""
    parser = sub.add_parser(
        "deploy",
        help="run the market with every prosumer and the DSO in its own process (ZeroMQ)",
        description="Start the DSO (which hosts the message relay) and every prosumer as "
        "separate processes on this host, run every interval, write the same tables as "
        "`p2pvar simulate` plus messages, timing and per-process counters to --out, and stop "
        "every process started (also on Ctrl-C or error). See docs/deploy.md.",
    )
    add_config_args(parser, SimConfig)
    add_config_args(parser, DeployOptions)
    add_out_args(parser, required=True)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="write the run spec and the per-host agent commands (deploy/commands.sh), "
        "start nothing",
    )
    parser.add_argument(
        "--collect",
        action="store_true",
        help="merge the records already in OUT/agents (agents started by hand from a "
        "--dry-run spec) into the tables; start nothing (OUT is expected to hold that run)",
    )
    parser.set_defaults(func=run)


def _commands_script(prepared: Prepared) -> Path:
    from abm.deploy.launcher import agent_command

    lines = ["#!/bin/sh", "# One line per agent; start the dso line first, on its host."]
    for agent_id, entry in prepared.spec.agents.items():
        command = shlex.join(agent_command(prepared, agent_id))
        lines.append(f"# host {entry.host}\n{command} &")
    lines.append("wait")
    path = prepared.out_dir / "deploy" / "commands.sh"
    path.write_text("\n".join(lines) + "\n")
    return path


def _status_line(status: dict) -> dict:
    return {
        "complete": status["complete"],
        "last_completed_interval": status["last_completed_interval"],
    }


def run(args: argparse.Namespace) -> int:
    """Deploy the run (or only prepare it) and print its summary."""
    from abm.deploy.launcher import collect_existing, deploy, prepare
    from abm.output.out_dir import prepare_out_dir

    if args.collect:
        collected = collect_existing(args.out)
        emit({**collected.summary, **_status_line(collected.status)}, args.json, title="merged")
        return 0
    config = config_from_args(SimConfig, args)
    options = config_from_args(DeployOptions, args)
    prepare_out_dir(args.out, args.overwrite)
    if args.dry_run:
        prepared = prepare(config, options, args.out)
        script = _commands_script(prepared)
        plan = {
            "run_spec": str(prepared.spec_path),
            "commands": str(script),
            "agents": len(prepared.spec.agents),
            "relay_upstream": prepared.spec.relay.upstream,
            "relay_downstream": prepared.spec.relay.downstream,
        }
        emit(plan, args.json, title="deployment prepared (nothing started)")
        return 0
    result = deploy(config, options, args.out, progress=not args.no_progress)
    title = (
        f"{config.network}, market={config.market}, protocol={config.protocol}, "
        f"policy={config.policy}, transport={options.transport}, {config.days} day(s), "
        f"seed={config.seed}, {len(result.tables['processes'])} processes"
    )
    emit(result.summary, args.json, title=title)
    if not args.json:
        print(f"results written to {args.out}")
    absent = result.status["never_present"]
    if absent:
        print(
            f"p2pvar: warning: {len(absent)} prosumer(s) never took part: {' '.join(absent)}",
            file=sys.stderr,
        )
    return 0
