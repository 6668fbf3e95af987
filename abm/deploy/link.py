"""An agent process's link to the market: transport, inbound guard, control channel, timers.

:class:`AgentLink` connects a :class:`messaging.zmq_transport.ZmqTransport` (retrying until a
deadline, since the relay may still be starting), sends what the agent logic returns,
numbers the main loop's own control messages (see :mod:`abm.deploy.guard`), and receives
with every refused message (malformed, duplicate, replayed, late) counted and skipped.
With ``bundle_sends`` what the process sends until it next waits goes to the relay as one
bundle frame (:mod:`messaging.batch`), sent before a receive that may wait, or a flush.

It bounds the work any one sender can cause per interval: after
:data:`MAX_REFUSALS_PER_SENDER` refusals of a sender's messages (refused on arrival, or
answered by the agent logic with an ``Error``) the sender is muted until the next interval
(its frames are dropped undecoded, counted as ``SenderMuted``) and gets no more ``Error``
replies (counted as ``ErrorReplySuppressed``). The DSO is never muted.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import Counter
from collections.abc import Iterable

import zmq

from abm.deploy.errors import DeployError
from abm.deploy.guard import InboundGuard
from abm.deploy.spec import AgentEntry
from messaging.endpoints import RelayEndpoints
from messaging.errors import RejectedMessage, TransportTimeout
from messaging.messages import DSO_ID, Error, Message, Outgoing
from messaging.security import KeyStore
from messaging.zmq_transport import CONNECT_TIMEOUT_MS, ZmqTransport

log = logging.getLogger(__name__)

#: Refusals of one sender's messages per interval before it is muted (see the module doc).
MAX_REFUSALS_PER_SENDER = 50
#: Unexpected errors written to the process log per interval (the rest are only counted).
MAX_LOGGED_ERRORS = 5
#: Refusal reason of a message whose handling raised an unexpected error.
HANDLER_ERROR = "HandlerError"
#: Refusal reason of an ``Error`` reply not sent because its recipient is over budget.
REPLY_SUPPRESSED = "ErrorReplySuppressed"


class AgentLink:
    """One agent process's endpoint with guard, control sequence numbers and timers."""

    def __init__(
        self,
        agent_id: str,
        entry: AgentEntry,
        keys: KeyStore | None,
        connect_timeout_ms: int,
        *,
        broadcasts: bool = True,
        bundle_sends: bool = False,
        local: tuple[RelayEndpoints, zmq.Context] | None = None,
    ) -> None:
        self.agent_id = agent_id
        self.transport = _connect(
            agent_id, entry, keys, connect_timeout_ms, broadcasts, bundle_sends, local
        )
        self.guard = InboundGuard()
        self._window: int | None = None
        self._refusals: Counter[str] = Counter()
        self._logged = 0
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

    def flush(self) -> None:
        """Send what the transport queued (``bundle_sends``; a receive does this too)."""
        start = time.perf_counter()
        self.transport.flush()
        self.send_s += time.perf_counter() - start

    def send_all(self, outgoing: Iterable[Outgoing]) -> None:
        """Send each ``(to, msg)`` the agent logic returned (``Error`` replies within budget)."""
        for to, msg in outgoing:
            if to is not None and isinstance(msg, Error) and not self._within_budget(to):
                self.guard.count(None, REPLY_SUPPRESSED, msg.refused_kind or "?")
                continue
            self.send(to, msg)

    def receive(self, timeout_ms: int, current_interval: int | None) -> Message | None:
        """The next accepted message, or ``None`` after ``timeout_ms``.

        Messages refused by the transport (malformed, wrong version or kind, bad field,
        forged sender, muted sender) or by the guard (duplicate, replayed, late) are counted
        and skipped; the refusal budget of their sender is charged.
        """
        transport = self.transport
        if transport.pending and timeout_ms > 0:  # never wait with messages unsent
            self.flush()
        if current_interval != self._window:
            self._new_window(current_interval)
        while transport.buffered:  # the rest of a batch already received: no wait, no timers
            try:
                msg = transport.next_buffered()
            except RejectedMessage as exc:
                self._refused(exc)
                continue
            if msg is not None and self._accepted(msg, current_interval):
                return msg
        start = time.perf_counter()
        deadline = start + timeout_ms / 1000
        try:
            while True:
                remaining_ms = max(0, round((deadline - time.perf_counter()) * 1000))
                try:
                    msg = transport.recv(remaining_ms)
                except RejectedMessage as exc:
                    self._refused(exc)
                    continue
                if msg is None:
                    return None
                if self._accepted(msg, current_interval):
                    return msg
        finally:
            self.recv_s += time.perf_counter() - start

    def _refused(self, exc: RejectedMessage) -> None:
        self.guard.count(exc)
        self._within_budget(exc.origin)

    def _accepted(self, msg: Message, current_interval: int | None) -> bool:
        if self.guard.accept(msg, current_interval):
            return True
        self._within_budget(msg.sender)
        return False

    def refuse(self, sender: str, reason: str, kind: str) -> None:
        """Count a message the process itself refuses (charged to ``sender``'s budget)."""
        self.guard.count(None, reason, kind)
        self._within_budget(sender)

    def handler_failed(self, msg: Message, exc: Exception) -> None:
        """Count (and log, a few per interval) a message whose handling raised ``exc``.

        The process goes on: nothing that arrives on the wire may end it.
        """
        self.guard.count(None, HANDLER_ERROR, msg.kind)
        self._within_budget(msg.sender)
        if self._logged < MAX_LOGGED_ERRORS:
            self._logged += 1
            log.warning(
                "%s: refused %s from %s: %s: %s",
                self.agent_id,
                msg.kind,
                msg.sender,
                type(exc).__name__,
                str(exc)[:200],
            )

    def _new_window(self, interval: int | None) -> None:
        self._window = interval
        self._refusals.clear()
        self._logged = 0
        self.transport.unmute_all()

    def _within_budget(self, sender: str | None) -> bool:
        """Charge one refusal to ``sender``; whether it is still within its budget."""
        if sender is None or sender == DSO_ID:
            return True
        count = self._refusals[sender] = self._refusals[sender] + 1
        if count == MAX_REFUSALS_PER_SENDER:
            self.transport.mute(sender)
        return count < MAX_REFUSALS_PER_SENDER

    def close(self) -> None:
        """Leave the relay and close the sockets."""
        self.transport.close()


def _connect(
    agent_id: str,
    entry: AgentEntry,
    keys: KeyStore | None,
    timeout_ms: int,
    broadcasts: bool,
    bundle_sends: bool,
    local: tuple[RelayEndpoints, zmq.Context] | None,
) -> ZmqTransport:
    endpoints, context = local if local is not None else (entry.endpoints, None)
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        left_ms = round((deadline - time.monotonic()) * 1000)
        try:
            return ZmqTransport(
                agent_id,
                endpoints,
                keys=keys,
                context=context,
                connect_timeout_ms=max(1, min(left_ms, CONNECT_TIMEOUT_MS)),
                broadcasts=broadcasts,
                bundle_sends=bundle_sends,
            )
        except TransportTimeout:
            if time.monotonic() >= deadline:
                raise DeployError(
                    f"{agent_id}: no relay at {entry.upstream} within {timeout_ms} ms"
                ) from None
