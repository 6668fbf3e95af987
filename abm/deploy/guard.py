"""Inbound checks of an agent process: duplicates, replays and late messages, counted.

A process sends on two sequence channels. **Market** messages come from the sans-IO agent
logic, numbered by the agent's own counter (from 0 in each process incarnation). **Control**
messages (:data:`CONTROL_KINDS`: acks, joins, leaves, DSO heartbeats) come from the process
main loop, numbered from the wall clock in ns at process start, so a restarted process
continues above its previous incarnation. The guard keeps, per sender, the highest control
seq and a :class:`messaging.replay.ReplayGuard` for the market channel; a fresh ``Join``
(a new incarnation) resets the sender's market channel. Every refusal is counted by reason
and kind.
"""

from __future__ import annotations

from collections import Counter

from messaging.errors import DuplicateMessage, LateMessage, RejectedMessage
from messaging.messages import Join, Message
from messaging.replay import ReplayGuard

#: Kinds only the process main loops send (never the agent logic).
CONTROL_KINDS = frozenset({"Heartbeat", "PhaseAck", "Join", "Leave"})


class InboundGuard:
    """Per-sender replay and lateness checks over the two channels (see the module doc)."""

    def __init__(self) -> None:
        self._control_seq: dict[str, int] = {}
        self._market: dict[str, ReplayGuard] = {}
        #: Refused messages by ``(reason, kind)``; reason is the error class name.
        self.refused: Counter[tuple[str, str]] = Counter()

    def count(self, exc: RejectedMessage | None, reason: str = "", kind: str | None = None) -> None:
        """Count one refused message (``exc``'s class and kind, or the given ones)."""
        if exc is not None:
            reason, kind = type(exc).__name__, exc.kind
        self.refused[(reason, kind or "?")] += 1

    def accept(self, msg: Message, current_interval: int | None) -> bool:
        """Whether ``msg`` is fresh; a refused one is counted and ``False`` returned.

        ``current_interval`` is the receiver's interval (``None``: no lateness floor).
        """
        sender = msg.sender
        if msg.kind in CONTROL_KINDS:
            if msg.seq <= self._control_seq.get(sender, -1):
                self.count(None, DuplicateMessage.__name__, msg.kind)
                return False
            self._control_seq[sender] = msg.seq
            if isinstance(msg, Join):
                self._market.pop(sender, None)
            return True
        guard = self._market.get(sender)
        if guard is None:
            guard = self._market[sender] = ReplayGuard()
        try:
            guard.check(msg, current_interval)
        except (DuplicateMessage, LateMessage) as exc:
            self.count(exc)
            return False
        return True
