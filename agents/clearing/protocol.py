"""The interface both clearing protocols implement, and the plumbing they share.

A protocol instance belongs to one peer (prosumer) and is sans-IO: it takes messages and
clock ticks and returns the messages to send as :data:`Outgoing` pairs ``(to, msg)``
(``to=None`` is a broadcast to every peer). It never blocks and never waits: the clock's
phase ticks (:meth:`ClearingProtocol.on_phase`) end every waiting, so the same code serves
a backend that delivers everything before the next tick (Mesa) and one where messages can
arrive late, early or never (multi-process).

Every received message first passes the common checks, in this order: field limits (NaN,
range, type), interval (a past interval is late; a future one is held until :meth:`start`
of that interval, at most :data:`MAX_EARLY_MESSAGES`), known sender (has an envelope) and
replay (a ``(sender, seq)`` pair seen before this interval), then absence (a sender the
DSO declared absent, see :meth:`ClearingProtocol.void_counterparty`). A refused message is recorded
as a :class:`Refusal`, answered with an ``Error`` to its sender, and changes nothing else.
Received ``Error`` messages are kept in ``errors`` and never answered.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol

from agents.clearing.errors import (
    REFUSALS,
    AbsentPeer,
    DuplicateMessage,
    LateMessage,
    Refused,
    UnexpectedMessage,
    UnknownSender,
)
from agents.clearing.validation import (
    check_duration_h,
    check_fields,
    check_within_envelope,
)
from messaging.capped import CappedList
from messaging.messages import (
    AGENT_ID_PATTERN,
    MAX_SEQ,
    MAX_TEXT_CHARS,
    Bid,
    Envelope,
    Error,
    Message,
    Offer,
    Outgoing,
)

#: Most messages of future intervals a peer holds until its own :meth:`start` (then refused).
MAX_EARLY_MESSAGES = 10_000
#: Request/answer rounds per interval unless configured otherwise (protocols with rounds).
DEFAULT_ROUNDS = 8
#: One clock tick: a phase name and its round (0 outside rounds).
Tick = tuple[str, int]


@dataclass(frozen=True)
class Refusal:
    """A refused input: who sent it, its kind and seq, the reason code and a one-line detail."""

    sender: str
    kind: str
    seq: int
    reason: str
    detail: str


@dataclass(frozen=True)
class ClearedTrade:
    """A final P2P trade: ``seller`` delivers ``quantity_kwh`` to ``buyer`` at the price."""

    trade_id: str
    buyer: str
    seller: str
    quantity_kwh: float
    price_eur_per_kwh: float


class ClearingProtocol(Protocol):
    """What the prosumer agent drives, whichever protocol clears the market.

    Per interval: :meth:`start` once, then every received market message goes to
    :meth:`on_message` and every clock tick of :meth:`ticks` to :meth:`on_phase`, in order;
    :meth:`final_trades` is complete once the last tick (``"schedule"``) has been given.
    """

    name: str
    refused: CappedList[Refusal]  # refused inputs of the current interval
    voided: int  # own trades (or bilateral requests) voided this interval
    errors: CappedList[Error]  # Error messages received this interval

    def ticks(self) -> tuple[tuple[str, int], ...]:
        """The ``(phase, round)`` clock ticks of one interval, in order."""
        ...

    def start(
        self,
        interval: int,
        own_order: Bid | Offer | None,
        envelopes: Mapping[str, Envelope],
        duration_h: float,
    ) -> list[Outgoing]:
        """Open ``interval`` with this peer's order (or none); return what to send first."""
        ...

    def on_message(self, msg: Message) -> list[Outgoing]:
        """Handle a received message; return the replies (``Error`` for a refused one)."""
        ...

    def on_phase(self, phase: str, round: int = 0) -> list[Outgoing]:
        """Handle a clock tick; return what to send in the phase it opens."""
        ...

    def final_trades(self) -> list[ClearedTrade]:
        """This peer's trades that both sides have committed to, in trade-id order."""
        ...

    def void_counterparty(self, peer: str) -> int:
        """Drop every pending and final trade of this interval with ``peer``; return how many.

        ``peer`` is absent for the rest of the interval (the DSO's ``Absent``): its later
        messages are refused, and its order leaves the book if the book is still open.
        """
        ...


class ClearingPeer:
    """Shared state and checks of the protocols; subclasses implement the protocol steps and
    say their clock ticks (:meth:`interval_ticks`, :attr:`SILENT_TICKS`).

    ``sender`` is this peer's agent id; ``next_seq`` returns the next sequence number of
    this peer's messages (shared with the rest of the agent so seqs keep increasing).
    ``validate_inputs=False`` skips the field-limit check of received messages, for callers
    whose transport has already validated every message (all of ``messaging``'s transports
    do); the interval, sender, replay and envelope checks always run.
    """

    name = ""
    #: Ticks at which a peer sends nothing: a multi-process clock opens the next tick without
    #: waiting for the peers to finish them (see ``docs/protocol.md``).
    SILENT_TICKS: ClassVar[frozenset[Tick]] = frozenset()

    @classmethod
    def interval_ticks(cls, rounds: int) -> tuple[Tick, ...]:
        """The ``(phase, round)`` clock ticks of one interval with ``rounds`` rounds (a
        protocol without rounds ignores it), ending with ``("schedule", 0)``."""
        raise NotImplementedError

    def __init__(
        self,
        sender: str,
        next_seq: Callable[[], int],
        rounds: int = DEFAULT_ROUNDS,
        *,
        validate_inputs: bool = True,
    ) -> None:
        self.rounds = rounds
        self.sender = sender
        self.validate_inputs = validate_inputs
        self.next_seq = next_seq
        self.interval = -1
        self.envelopes: Mapping[str, Envelope] = {}
        self.duration_h = 1.0
        self.refused: CappedList[Refusal] = CappedList()
        self.voided = 0
        self.errors: CappedList[Error] = CappedList()
        self._seen: set[tuple[str, int]] = set()
        self._early: list[Message] = []
        self._final: dict[str, ClearedTrade] = {}
        self._absent: set[str] = set()

    def ticks(self) -> tuple[Tick, ...]:
        """See :meth:`ClearingProtocol.ticks` (:meth:`interval_ticks` of this peer's rounds)."""
        return self.interval_ticks(self.rounds)

    def start(
        self,
        interval: int,
        own_order: Bid | Offer | None,
        envelopes: Mapping[str, Envelope],
        duration_h: float,
    ) -> list[Outgoing]:
        """Open ``interval``; see :meth:`ClearingProtocol.start`.

        Raises a :class:`ClearingError` subclass when this peer's own order is invalid
        (bad field, another sender or interval, outside its own envelope).
        """
        check_duration_h(duration_h)
        if own_order is not None:
            self._check_own_order(own_order, interval, envelopes, duration_h)
        self.interval = interval
        self.envelopes = envelopes
        self.duration_h = duration_h
        self.refused = CappedList()
        self.voided = 0
        self.errors = CappedList()
        self._seen = set()
        self._final = {}
        self._absent = set()
        out = self._open(own_order)
        held, self._early = self._early, []
        for msg in held:  # this interval's are handled, older refused as late, later held
            out += self.on_message(msg)
        return out

    def on_message(self, msg: Message) -> list[Outgoing]:
        """Run the common checks, then the protocol's handler; see :meth:`ClearingProtocol`."""
        if msg.sender == self.sender:
            return []  # a bus may echo this peer's own broadcasts back to it
        if isinstance(msg, Error):
            self.errors.append(msg)  # never answered, so two peers cannot ping-pong errors
            return []
        try:
            if self.validate_inputs:
                check_fields(msg)
            if msg.interval > self.interval:
                return self._hold_early(msg)
            if msg.interval < self.interval:
                raise LateMessage(
                    f"{msg.kind} seq={msg.seq}: interval={msg.interval} is over "
                    f"(this peer is in interval {self.interval})"
                )
            if msg.sender not in self.envelopes:
                raise UnknownSender(
                    f"{msg.kind} seq={msg.seq}: sender={msg.sender!r} has no envelope this interval"
                )
            key = (msg.sender, msg.seq)
            if key in self._seen:
                raise DuplicateMessage(f"{msg.kind} from {msg.sender!r}: seq={msg.seq} replayed")
            self._seen.add(key)
            if msg.sender in self._absent:
                raise AbsentPeer(
                    f"{msg.kind} seq={msg.seq}: sender={msg.sender!r} is absent this interval"
                )
            return self._handle(msg)
        except REFUSALS as exc:
            return self.refuse(msg, exc)

    def final_trades(self) -> list[ClearedTrade]:
        """See :meth:`ClearingProtocol.final_trades`."""
        return [self._final[key] for key in sorted(self._final)]

    def void_counterparty(self, peer: str) -> int:
        """See :meth:`ClearingProtocol.void_counterparty` (for the interval of :meth:`start`)."""
        self._absent.add(peer)
        dropped = [t for t in self._final.values() if peer in (t.buyer, t.seller)]
        for trade in dropped:
            del self._final[trade.trade_id]
            self._release(trade)
        count = len(dropped) + self._void_pending(peer)
        self.voided += count
        return count

    def refuse(self, msg: Message, exc: Refused) -> list[Outgoing]:
        """Record the refusal of ``msg`` and return the ``Error`` reply to its sender."""
        seq = msg.seq if type(msg.seq) is int and 0 <= msg.seq <= MAX_SEQ else -1
        sender = msg.sender if isinstance(msg.sender, str) else repr(msg.sender)
        self.refused.append(Refusal(sender, msg.kind, seq, exc.code, str(exc)))
        if not AGENT_ID_PATTERN.fullmatch(sender):
            return []  # no valid address to answer
        text = f"{exc.code}: {exc}"[:MAX_TEXT_CHARS]
        reply = Error(self.sender, max(self.interval, 0), self.next_seq(), msg.kind, seq, text)
        return [(sender, reply)]

    def finalize(self, trade: ClearedTrade) -> None:
        """Record ``trade`` as final for this peer."""
        self._final[trade.trade_id] = trade

    def _hold_early(self, msg: Message) -> list[Outgoing]:
        if len(self._early) >= MAX_EARLY_MESSAGES:
            raise LateMessage(
                f"{msg.kind} seq={msg.seq}: interval={msg.interval} has not started here and "
                f"{MAX_EARLY_MESSAGES} early messages are already held"
            )
        self._early.append(msg)
        return []

    def _check_own_order(
        self,
        order: Bid | Offer,
        interval: int,
        envelopes: Mapping[str, Envelope],
        duration_h: float,
    ) -> None:
        check_fields(order)
        if not isinstance(order, Bid | Offer):
            raise UnexpectedMessage(f"own_order: kind={order.kind!r} is not a Bid or an Offer")
        if order.sender != self.sender or order.interval != interval:
            raise UnexpectedMessage(
                f"own_order: sender={order.sender!r} interval={order.interval} is not "
                f"{self.sender!r} in interval {interval}"
            )
        self.check_order(order, envelopes, duration_h)

    @staticmethod
    def check_order(
        order: Bid | Offer, envelopes: Mapping[str, Envelope], duration_h: float
    ) -> None:
        """Raise unless ``order``'s sender is known and its quantity is inside its envelope."""
        direction: Literal["export", "import"] = "export" if isinstance(order, Offer) else "import"
        check_within_envelope(
            order.sender,
            order.quantity_kwh,
            direction,
            envelopes,
            duration_h,
            lambda: f"{order.kind} seq={order.seq}",
        )

    def on_phase(self, phase: str, round: int = 0) -> list[Outgoing]:
        """See :meth:`ClearingProtocol.on_phase` (each protocol's own steps)."""
        raise NotImplementedError

    def _open(self, own_order: Bid | Offer | None) -> list[Outgoing]:
        raise NotImplementedError

    def _handle(self, msg: Message) -> list[Outgoing]:
        raise NotImplementedError

    def _void_pending(self, peer: str) -> int:
        """Drop the protocol's open state with absent ``peer``; return the trades dropped."""
        raise NotImplementedError

    def _release(self, trade: ClearedTrade) -> None:
        """Give back what a voided final ``trade`` had taken (protocol bookkeeping)."""
        raise NotImplementedError
