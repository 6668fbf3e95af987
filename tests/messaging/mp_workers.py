"""Agent processes for the multi-process test (kept light: spawned children import this)."""

from __future__ import annotations

import sys

from messaging.endpoints import RelayEndpoints
from messaging.errors import MessagingError
from messaging.messages import Bid, Heartbeat, Join, Leave, Phase
from messaging.replay import ReplayGuard
from messaging.zmq_transport import ZmqTransport

COORDINATOR = "coord"
#: Bound of every wait inside a worker, ms.
WORKER_RECV_MS = 20_000


def run_agent(agent_id: str, endpoints: RelayEndpoints, peers: list[str], rounds: int) -> None:
    """Join, wait for the start phase, exchange with every peer, report counts, exit 0.

    Sends ``rounds`` directed bids to each peer and publishes ``rounds`` heartbeats;
    expects the same from every peer, in per-sender order (checked by a ReplayGuard).
    """
    others = [p for p in peers if p != agent_id]
    seq = iter(range(1, 10**9))
    with ZmqTransport(agent_id, endpoints, connect_timeout_ms=WORKER_RECV_MS) as t:
        t.send(COORDINATOR, Join(agent_id, 0, next(seq)))
        start = t.recv(WORKER_RECV_MS)
        if not isinstance(start, Phase):
            sys.exit(f"{agent_id}: expected the start phase, got {start!r}")
        for r in range(rounds):
            for peer in others:
                t.send(peer, Bid(agent_id, 0, next(seq), float(r), 0.1))
            t.publish(Heartbeat(agent_id, 0, next(seq)))
        guard = ReplayGuard()
        counts = {"Bid": 0, "Heartbeat": 0}
        expected = len(others) * rounds
        while counts["Bid"] < expected or counts["Heartbeat"] < expected:
            msg = t.recv(WORKER_RECV_MS)
            if msg is None:
                sys.exit(f"{agent_id}: timed out with {counts}")
            try:
                guard.check(msg)
            except MessagingError as exc:
                sys.exit(f"{agent_id}: {exc}")
            counts[msg.kind] += 1
        t.send(COORDINATOR, Leave(agent_id, 0, next(seq), f"bids={counts['Bid']}"))
