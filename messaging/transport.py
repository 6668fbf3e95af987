"""The interface every transport backend offers to agents."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from messaging.counters import Counters
from messaging.errors import SenderMismatch
from messaging.messages import Message

#: ``recv`` timeout meaning "do not wait".
NO_WAIT = 0


@runtime_checkable
class Transport(Protocol):
    """An agent's endpoint: directed send, broadcast publish, receive, close.

    Every message it hands out has been validated; a refused one surfaces as a
    :class:`messaging.errors.RejectedMessage` raised by :meth:`recv` (and counted),
    after which the next ``recv`` goes on with the next message.
    """

    agent_id: str
    counters: Counters

    def send(self, to: str, msg: Message) -> None:
        """Send ``msg`` to agent ``to`` only."""
        ...

    def publish(self, msg: Message) -> None:
        """Send ``msg`` to every other agent."""
        ...

    def recv(self, timeout_ms: int | None = NO_WAIT) -> Message | None:
        """Next message, or ``None`` if none came within ``timeout_ms`` (``None``: wait)."""
        ...

    def close(self) -> None:
        """Release the endpoint; further use raises :class:`TransportClosed`."""
        ...


def sender_mismatch(msg: Message, reason: str, origin: str | None = None) -> SenderMismatch:
    """The error for ``msg``, whose ``sender`` is not the agent it is from (``reason``: how
    that agent is known; ``origin``: the agent, where it is named)."""
    return SenderMismatch(
        f"{msg.kind}.sender={msg.sender!r}: {reason}",
        kind=msg.kind,
        sender=msg.sender,
        seq=msg.seq,
        field="sender",
        value=msg.sender,
        origin=origin,
    )


def check_own_sender(agent_id: str, msg: Message) -> None:
    """Refuse to send a message whose ``sender`` is not the sending endpoint's agent."""
    if msg.sender != agent_id:
        raise sender_mismatch(msg, f"endpoint belongs to {agent_id!r}", origin=agent_id)
