"""An agent process's link to the market: transport, inbound guard, control channel, timers.

:class:`AgentLink` connects a :class:`messaging.zmq_transport.ZmqTransport` (retrying until a
deadline, since the relay may still be starting), sends what the agent logic returns,
numbers the main loop's own control messages (see :mod:`abm.deploy.guard`), and receives
with every refused message (malformed, duplicate, replayed, late) counted and skipped.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable

from abm.deploy.errors import DeployError
from abm.deploy.guard import InboundGuard
from abm.deploy.spec import AgentEntry
from messaging.errors import RejectedMessage, TransportTimeout
from messaging.messages import Message
from messaging.security import KeyStore
from messaging.zmq_transport import CONNECT_TIMEOUT_MS, ZmqTransport

Outgoing = tuple[str | None, Message]


class AgentLink:
    """One agent process's endpoint with guard, control sequence numbers and timers."""

    def __init__(
        self, agent_id: str, entry: AgentEntry, keys: KeyStore | None, connect_timeout_ms: int
    ) -> None:
        self.agent_id = agent_id
        self.transport = _connect(agent_id, entry, keys, connect_timeout_ms)
        self.guard = InboundGuard()
        self._control_seq = itertools.count(time.time_ns())
        #: Seconds spent sending (encode and hand-off) and inside receives (waiting included).
        self.send_s = 0.0
        self.recv_s = 0.0
        self.last_send = time.monotonic()

    def next_control_seq(self) -> int:
        """Sequence number of the next control message (above any earlier incarnation's)."""
        return next(self._control_seq)

    def send(self, to: str | None, msg: Message) -> None:
        """Send ``msg`` to ``to`` (``None``: publish to every agent)."""
        start = time.perf_counter()
        if to is None:
            self.transport.publish(msg)
        else:
            self.transport.send(to, msg)
        self.send_s += time.perf_counter() - start
        self.last_send = time.monotonic()

    def send_all(self, outgoing: Iterable[Outgoing]) -> None:
        """Send each ``(to, msg)`` the agent logic returned."""
        for to, msg in outgoing:
            self.send(to, msg)

    def receive(self, timeout_ms: int, current_interval: int | None) -> Message | None:
        """The next accepted message, or ``None`` after ``timeout_ms``.

        Messages refused by the transport (malformed, wrong version or kind, bad field,
        forged sender) or by the guard (duplicate, replayed, late) are counted and skipped.
        """
        start = time.perf_counter()
        deadline = start + timeout_ms / 1000
        try:
            while True:
                remaining_ms = max(0, round((deadline - time.perf_counter()) * 1000))
                try:
                    msg = self.transport.recv(remaining_ms)
                except RejectedMessage as exc:
                    self.guard.count(exc)
                    continue
                if msg is None:
                    return None
                if self.guard.accept(msg, current_interval):
                    return msg
        finally:
            self.recv_s += time.perf_counter() - start

    def close(self) -> None:
        """Leave the relay and close the sockets."""
        self.transport.close()


def _connect(
    agent_id: str, entry: AgentEntry, keys: KeyStore | None, timeout_ms: int
) -> ZmqTransport:
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        left_ms = round((deadline - time.monotonic()) * 1000)
        try:
            return ZmqTransport(
                agent_id,
                entry.endpoints,
                keys=keys,
                connect_timeout_ms=max(1, min(left_ms, CONNECT_TIMEOUT_MS)),
            )
        except TransportTimeout:
            if time.monotonic() >= deadline:
                raise DeployError(
                    f"{agent_id}: no relay at {entry.upstream} within {timeout_ms} ms"
                ) from None
