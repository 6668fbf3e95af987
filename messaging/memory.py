"""In-memory bus for the in-process (Mesa) backend.

Messages are passed as objects, never encoded per hop: each send or publish is validated
once and, unless ``count_bytes`` is off, encoded once to count its wire size. Delivery is
deterministic: FIFO per recipient in send order; a publish reaches every other endpoint
that exists at the time of the publish.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from messaging.codec import checked_wire_size
from messaging.counters import Counters, counters_table
from messaging.errors import TransportClosed, TransportError, UnknownRecipient
from messaging.messages import AGENT_ID_PATTERN, Message
from messaging.transport import NO_WAIT, check_own_sender

_Queued = tuple[Message, int, int]  # message, send time (ns), wire size (bytes)


class InMemoryBus:
    """Registry of in-process endpoints with one FIFO queue per agent."""

    def __init__(self, *, count_bytes: bool = True, measure_latency: bool = True) -> None:
        self.count_bytes = count_bytes
        self.measure_latency = measure_latency
        self._endpoints: dict[str, InMemoryEndpoint] = {}

    def endpoint(self, agent_id: str) -> InMemoryEndpoint:
        """Create the endpoint of ``agent_id`` (ids are unique on a bus)."""
        if type(agent_id) is not str or not AGENT_ID_PATTERN.fullmatch(agent_id):
            raise TransportError(f"agent_id={agent_id!r}: not a valid agent id")
        if agent_id in self._endpoints:
            raise TransportError(f"agent_id={agent_id!r}: already has an endpoint on this bus")
        ep = self._endpoints[agent_id] = InMemoryEndpoint(self, agent_id)
        return ep

    @property
    def agents(self) -> tuple[str, ...]:
        """Ids of the open endpoints, in creation order."""
        return tuple(self._endpoints)

    def pending(self, agent_id: str) -> int:
        """Messages queued for ``agent_id``."""
        return len(self._get(agent_id).queue)

    def drain(self, agent_id: str) -> list[Message]:
        """Receive every message queued for ``agent_id``, in order."""
        return self._get(agent_id).drain()

    def counters_rows(self) -> list[dict[str, Any]]:
        """Overhead counters of every open endpoint (see :meth:`Counters.rows`)."""
        return counters_table(ep.counters for ep in self._endpoints.values())

    def _get(self, agent_id: str) -> InMemoryEndpoint:
        ep = self._endpoints.get(agent_id)
        if ep is None:
            raise UnknownRecipient(f"agent_id={agent_id!r}: no endpoint on this bus")
        return ep

    def _remove(self, agent_id: str) -> None:
        self._endpoints.pop(agent_id, None)


class InMemoryEndpoint:
    """One agent's :class:`messaging.transport.Transport` on an :class:`InMemoryBus`."""

    def __init__(self, bus: InMemoryBus, agent_id: str) -> None:
        self.agent_id = agent_id
        self.counters = Counters(agent_id)
        self.queue: deque[_Queued] = deque()
        self._bus: InMemoryBus | None = bus

    def _open_bus(self) -> InMemoryBus:
        if self._bus is None:
            raise TransportClosed(f"endpoint {self.agent_id!r} is closed")
        return self._bus

    def send(self, to: str, msg: Message) -> None:
        """Validate ``msg`` and queue it for ``to``."""
        bus = self._open_bus()
        check_own_sender(self.agent_id, msg)
        target = bus._get(to)
        nbytes = checked_wire_size(msg, bus.count_bytes)
        target.queue.append((msg, time.time_ns(), nbytes))
        self.counters.count_sent(msg.kind, nbytes)

    def publish(self, msg: Message) -> None:
        """Validate ``msg`` and queue it for every other endpoint."""
        bus = self._open_bus()
        check_own_sender(self.agent_id, msg)
        nbytes = checked_wire_size(msg, bus.count_bytes)
        item = (msg, time.time_ns(), nbytes)
        for ep in bus._endpoints.values():
            if ep is not self:
                ep.queue.append(item)
        self.counters.count_sent(msg.kind, nbytes)

    def recv(self, timeout_ms: int | None = NO_WAIT) -> Message | None:
        """Next queued message or ``None``; never blocks (nothing can arrive meanwhile)."""
        bus = self._open_bus()
        if not self.queue:
            return None
        msg, send_ns, nbytes = self.queue.popleft()
        if bus.measure_latency:
            self.counters.count_received(msg.kind, nbytes, time.time_ns() - send_ns)
        else:
            self.counters.count_received(msg.kind, nbytes, None)
        return msg

    def drain(self) -> list[Message]:
        """Receive every message queued now, in order (later arrivals stay queued)."""
        bus = self._bus or self._open_bus()  # the open bus without a call: a hot path
        if not self.queue:  # most calls of a delivery loop find nothing
            return []
        items = list(self.queue)
        self.queue.clear()
        count = self.counters.count_received
        now_ns = time.time_ns() if bus.measure_latency else None
        for msg, send_ns, nbytes in items:
            count(msg.kind, nbytes, None if now_ns is None else now_ns - send_ns)
        return [item[0] for item in items]

    def close(self) -> None:
        """Leave the bus; queued messages are dropped."""
        if self._bus is not None:
            self._bus._remove(self.agent_id)
            self._bus = None
            self.queue.clear()
