"""Typed errors of the P2P clearing protocols.

Every refusal of an input carries a short machine-readable ``code`` (used in
:class:`agents.clearing.protocol.Refusal` and in the ``Error`` message sent back to the
sender) and a one-line message that names the field and the offending value.
"""

from __future__ import annotations

from agents.errors import AgentError
from messaging.errors import DuplicateMessage, LateMessage


class ClearingError(AgentError):
    """Base class of the clearing errors; ``code`` is a short code for the refusal."""

    code: str = "invalid"


class InvalidOrder(ClearingError):
    """An order or trade field is not a finite number, is negative, or is malformed."""

    code = "invalid_value"


class OutsideEnvelope(ClearingError):
    """An order or trade quantity exceeds its sender's operating envelope."""

    code = "outside_envelope"


class UnknownSender(ClearingError):
    """The sender has no operating envelope this interval (not a known prosumer)."""

    code = "unknown_sender"


class AbsentPeer(ClearingError):
    """The sender is absent for the rest of this interval (the DSO said so)."""

    code = "absent_sender"


class UnexpectedMessage(ClearingError):
    """A message this protocol does not expect here (wrong kind, wrong recipient, unknown trade)."""

    code = "unexpected"


class TradeMismatch(ClearingError):
    """A counterparty's confirm disagrees with this peer's own record of the trade."""

    code = "mismatch"


class InvalidSetting(ClearingError):
    """A protocol setting (name, number of rounds) is not one this package offers."""

    code = "invalid_setting"


#: Every error a clearing peer refuses an input with: the clearing errors and the
#: messaging layer's :class:`DuplicateMessage` (a replayed ``seq``, or a second order or
#: request where one is allowed) and :class:`LateMessage` (another interval or round, or a
#: closed phase). Each has a ``code``.
REFUSALS = (ClearingError, DuplicateMessage, LateMessage)
#: One of :data:`REFUSALS`.
Refused = ClearingError | DuplicateMessage | LateMessage

__all__ = [
    "REFUSALS",
    "AbsentPeer",
    "ClearingError",
    "DuplicateMessage",
    "InvalidOrder",
    "InvalidSetting",
    "LateMessage",
    "OutsideEnvelope",
    "Refused",
    "TradeMismatch",
    "UnexpectedMessage",
    "UnknownSender",
]
