"""``p2pvar agent``: run one agent (the DSO with its relay, or one prosumer) as this process."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from abm.deploy.spec import Role


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``agent`` subcommand."""
    parser = sub.add_parser(
        "agent",
        help="run one agent of a multi-process deployment (DSO or prosumer)",
        description="Run one agent as its own process. Endpoints, keys, timeouts and the "
        "policy come from the run spec FILE that `p2pvar deploy` writes "
        "(DIR/deploy/run.json; `p2pvar deploy --dry-run` writes it without starting "
        "anything). The DSO process also hosts the message relay.",
    )
    parser.add_argument("--role", required=True, choices=[str(r) for r in Role], help="agent role")
    parser.add_argument("--id", required=True, dest="agent_id", help="agent id (e.g. dso, p05)")
    parser.add_argument("--config", required=True, type=Path, help="run spec file (JSON)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the agent until the run closes; return its exit status."""
    from abm.deploy.agent_main import run_agent

    return run_agent(args.config, args.role, args.agent_id)


def main(argv: list[str] | None = None) -> int:
    """``python -m abm.cli.commands.agent``: this subcommand alone (no other command imported)."""
    from abm.cli.main import USER_ERRORS

    parser = argparse.ArgumentParser(prog="p2pvar agent")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(["agent", *(sys.argv[1:] if argv is None else argv)])
    try:
        return args.func(args)
    except USER_ERRORS as exc:
        print(f"p2pvar: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
