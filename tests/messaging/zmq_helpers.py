"""Test helpers: relays on inproc/ipc/tcp (loopback, free ports, ipc in a tmp dir)."""

from __future__ import annotations

import contextlib
import itertools
import tempfile
from collections.abc import Iterator
from typing import Any

import zmq

from messaging.endpoints import RelayEndpoints
from messaging.security import KeyStore
from messaging.zmq_transport import Relay, ZmqTransport

SCHEMES = ("inproc", "ipc", "tcp")
#: Bounded waits in tests, ms (generous: CI machines are shared).
TEST_RECV_MS = 5000
TEST_CONNECT_MS = 20000  # a CURVE handshake on a loaded 2-core machine took over 5 s
REFUSED_CONNECT_MS = 600

_names = itertools.count()


@contextlib.contextmanager
def running_relay(
    scheme: str,
    keys: KeyStore | None = None,
    agents: list[str] | None = None,
    clock: str | None = None,
) -> Iterator[Relay]:
    """A relay thread on ``scheme`` with its own context; everything closed afterwards."""
    context = zmq.Context()
    with tempfile.TemporaryDirectory(prefix="p2pvar-") as folder:
        endpoints = {
            "inproc": lambda: RelayEndpoints.inproc(f"test{next(_names)}"),
            "ipc": lambda: RelayEndpoints.ipc(folder),
            "tcp": lambda: RelayEndpoints.tcp(),
        }[scheme]()
        relay = Relay(endpoints, keys=keys, agents=agents, context=context, clock=clock).start()
        try:
            yield relay
        finally:
            relay.close()
            context.destroy(linger=0)


def connect(relay: Relay, agent_id: str, keys: KeyStore | None = None, **kw: Any) -> ZmqTransport:
    """An endpoint of ``agent_id`` joined to ``relay`` (sharing its context)."""
    kw.setdefault("connect_timeout_ms", TEST_CONNECT_MS)
    return ZmqTransport(agent_id, relay.endpoints, keys=keys, context=relay.context, **kw)


def raw_dealer(relay: Relay, routing_id: bytes) -> zmq.Socket:
    """A bare DEALER on ``relay``'s upstream with ``routing_id`` (sends whatever it is told)."""
    sock = relay.context.socket(zmq.DEALER)
    sock.linger = 0
    sock.routing_id = routing_id
    sock.connect(relay.endpoints.upstream)
    return sock
