"""Typed errors of the P2P clearing protocols.

Every refusal of an input carries a short machine-readable ``reason`` code (used in
:class:`agents.clearing.protocol.Refusal` and in the ``Error`` message sent back to the
sender) and a one-line message that names the field and the offending value.
"""

from __future__ import annotations

from agents.errors import AgentError


class ClearingError(AgentError):
    """Base class of the clearing errors; ``reason`` is a short code for the refusal."""

    reason: str = "invalid"


class InvalidOrder(ClearingError):
    """An order or trade field is not a finite number, is negative, or is malformed."""

    reason = "invalid_value"


class OutsideEnvelope(ClearingError):
    """An order or trade quantity exceeds its sender's operating envelope."""

    reason = "outside_envelope"


class UnknownSender(ClearingError):
    """The sender has no operating envelope this interval (not a known prosumer)."""

    reason = "unknown_sender"


class AbsentPeer(ClearingError):
    """The sender is absent for the rest of this interval (the DSO said so)."""

    reason = "absent_sender"


class LateMessage(ClearingError):
    """The message belongs to another interval or round, or its phase has closed."""

    reason = "late"


class DuplicateMessage(ClearingError):
    """A replayed ``seq`` or a second order / request from one sender where one is allowed."""

    reason = "duplicate"


class UnexpectedMessage(ClearingError):
    """A message this protocol does not expect here (wrong kind, wrong recipient, unknown trade)."""

    reason = "unexpected"


class TradeMismatch(ClearingError):
    """A counterparty's confirm disagrees with this peer's own record of the trade."""

    reason = "mismatch"


class InvalidSetting(ClearingError):
    """A protocol setting (name, number of rounds) is not one this package offers."""

    reason = "invalid_setting"
