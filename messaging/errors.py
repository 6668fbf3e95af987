"""Typed errors of the messaging layer.

Every error a receiver can meet while accepting a message derives from
:class:`RejectedMessage`, which carries what is known about the refused message
(``kind``, ``sender``, ``seq``, the relay-stamped ``origin``) so that an agent can turn it
into an :class:`messaging.messages.Error` reply (see :func:`messaging.messages.error_reply`).
"""

from __future__ import annotations

from typing import Any


class MessagingError(Exception):
    """Base class of every error raised by messaging/; the CLI prints it as one line."""


class RejectedMessage(MessagingError):
    """A message was refused (bad frames, version, kind, field, sender, replay or lateness).

    Attributes name what is known of the refused message; each is ``None`` when unknown.
    ``origin`` is the agent id the transport attributes the frames to (the relay-stamped,
    authenticated sender on ZeroMQ), the address an ``Error`` reply should go to. ``code``
    is a short machine-readable name of the refusal (in a clearing peer's ``Refusal``).
    """

    code: str = "rejected"

    def __init__(
        self,
        reason: str,
        *,
        kind: str | None = None,
        sender: str | None = None,
        seq: int | None = None,
        field: str | None = None,
        value: Any = None,
        origin: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
        self.sender = sender
        self.seq = seq
        self.field = field
        self.value = value
        self.origin = origin


class MalformedFrame(RejectedMessage):
    """The frames are not a message at all (frame count, header layout, msgpack, size)."""


class ProtocolVersionError(RejectedMessage):
    """The header carries a protocol version this build does not speak."""


class UnknownKind(RejectedMessage):
    """The header names a message kind that is not registered in ``KINDS``."""


class InvalidMessage(RejectedMessage):
    """A field has the wrong type, is missing, not finite, negative or out of range."""


class SenderMismatch(RejectedMessage):
    """The claimed ``msg.sender`` differs from the (authenticated) origin of the frames."""


class DuplicateMessage(RejectedMessage):
    """A duplicate: a sender's ``seq`` did not increase (a replay), or a second order or
    request from one sender where one is allowed."""

    code = "duplicate"


class LateMessage(RejectedMessage):
    """A message belongs to an interval (or clearing round) that is over, or its phase closed."""

    code = "late"


class SenderMuted(RejectedMessage):
    """The sender used up its refusal budget: its frames are dropped undecoded for a while."""


class TransportError(MessagingError):
    """A transport cannot do what was asked (closed, unknown recipient, timeout, setup)."""


class UnknownRecipient(TransportError):
    """A directed message names a recipient the transport does not know."""


class TransportClosed(TransportError):
    """The transport was used after :meth:`close`."""


class TransportTimeout(TransportError):
    """A bounded wait (connect handshake, send) ran out."""


class SecurityError(MessagingError):
    """CURVE setup problem: missing or unreadable keys, insecure endpoint."""
