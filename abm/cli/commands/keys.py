"""``p2pvar keys init DIR [--agents ID ...]``: the CURVE key store of the ZeroMQ transport."""

from __future__ import annotations

import argparse
from pathlib import Path

from abm.cli.commands.output import emit
from messaging.security import init_keystore


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``keys`` and its ``init`` action."""
    parser = sub.add_parser("keys", help="CURVE key store for the ZeroMQ transport (tcp)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    init = actions.add_parser(
        "init",
        help="create a key pair for the relay and for each agent id",
        description="Create DIR/public_keys/<id>.key and DIR/private_keys/<id>.key_secret "
        "for the relay and every --agents id. Existing key pairs are kept. The relay's host "
        "needs DIR/public_keys; each agent's host needs its own key_secret and relay.key.",
    )
    init.add_argument("dir", type=Path, metavar="DIR", help="key store directory")
    init.add_argument("--agents", nargs="*", default=[], metavar="ID", help="agent ids")
    init.add_argument("--json", action="store_true", help="print JSON")
    init.set_defaults(func=run_init)


def run_init(args: argparse.Namespace) -> int:
    """Create the missing key pairs and print what was created and kept."""
    created, kept = init_keystore(args.dir, args.agents)
    result = {"dir": str(args.dir), "created": created, "kept": kept}
    emit(result, args.json, title="CURVE key store")
    return 0
