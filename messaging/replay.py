"""Duplicate, replay and lateness detection for received messages."""

from __future__ import annotations

from typing import Any

from messaging.errors import DuplicateMessage, LateMessage
from messaging.messages import Message


class ReplayGuard:
    """Refuses, per sender, a ``seq`` that does not exceed the highest seen, and late messages.

    A message is late when its interval is before ``current_interval`` (when given) or
    before the latest interval already seen from the same sender. A late message still
    consumes its ``seq``, so replaying it later is reported as a duplicate.
    """

    def __init__(self) -> None:
        self._last_seq: dict[str, int] = {}
        self._last_interval: dict[str, int] = {}

    def check(self, msg: Message, current_interval: int | None = None) -> Message:
        """Return ``msg`` if fresh; else raise :class:`DuplicateMessage` or :class:`LateMessage`."""
        sender, seq, interval = msg.sender, msg.seq, msg.interval
        last = self._last_seq.get(sender, -1)
        if seq <= last:
            raise DuplicateMessage(
                f"{msg.kind}.seq={seq}: not above {last}, the last seq from {sender!r}",
                field="seq",
                value=seq,
                **_context(msg),
            )
        self._last_seq[sender] = seq
        latest = self._last_interval.get(sender, -1)
        floor = (
            latest if current_interval is None or current_interval < latest else current_interval
        )
        if interval < floor:
            raise LateMessage(
                f"{msg.kind}.interval={interval}: before interval {floor}",
                field="interval",
                value=interval,
                **_context(msg),
            )
        self._last_interval[sender] = interval
        return msg


def _context(msg: Message) -> dict[str, Any]:
    """The error fields naming ``msg``."""
    return {"kind": msg.kind, "sender": msg.sender, "seq": msg.seq, "origin": msg.sender}
