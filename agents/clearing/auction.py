"""Replicated double auction: every peer matches the same order set; pairs confirm bilaterally.

One interval, for each peer (see ``docs/protocol.md`` for the message sequence):

1. :meth:`start` (``orders`` phase): broadcast this peer's ``Bid`` or ``Offer`` (none when
   it abstains); collect the others', refusing invalid ones (see :mod:`.validation`) and a
   second order from one sender.
2. tick ``clear``: the order book closes; run :func:`.matching.match_double_auction` on the
   valid orders. Every honest peer holds the same book, so all compute the same trades.
3. tick ``confirm``: send a ``TradeConfirm(accepted=True)`` to the counterparty of each of
   this peer's trades. A trade becomes final when the counterparty's confirm arrives with
   the same ``(trade_id, buyer, seller, quantity, price)``; a different one voids that trade
   (and is refused as a mismatch), a rejecting one voids it.
4. tick ``schedule``: confirms close; trades still unconfirmed are voided.

An ``Absent`` peer (:meth:`void_counterparty`) leaves the book while it is open; once it is
closed, this peer's trades with it are voided and the other matches stand.
"""

from __future__ import annotations

from agents.clearing.errors import (
    REFUSALS,
    DuplicateMessage,
    LateMessage,
    TradeMismatch,
    UnexpectedMessage,
)
from agents.clearing.matching import Match, match_double_auction, trade_id
from agents.clearing.protocol import ClearedTrade, ClearingPeer
from agents.clearing.validation import order_name
from messaging.messages import Bid, Message, Offer, Outgoing, TradeConfirm

#: Clock ticks of one interval.
AUCTION_TICKS: tuple[tuple[str, int], ...] = (("clear", 0), ("confirm", 0), ("schedule", 0))
#: Ticks at which a peer sends nothing (``clear`` only runs the matching), so a clock need not
#: wait for the peers to finish them before it opens the next tick.
AUCTION_SILENT_TICKS: frozenset[tuple[str, int]] = frozenset({("clear", 0)})

_ORDERS, _CLEARED, _CONFIRMING, _CLOSED = "orders", "cleared", "confirming", "closed"
#: The order kinds (a tuple: ``Bid | Offer`` would build a union object per message).
_ORDER_KINDS = (Bid, Offer)


class ReplicatedAuction(ClearingPeer):
    """One peer of the replicated double auction (see the module docstring)."""

    name = "auction"
    SILENT_TICKS = AUCTION_SILENT_TICKS

    @classmethod
    def interval_ticks(cls, rounds: int) -> tuple[tuple[str, int], ...]:
        """See :meth:`ClearingPeer.interval_ticks` (one round whatever ``rounds``)."""
        return AUCTION_TICKS

    def _open(self, own_order: Bid | Offer | None) -> list[Outgoing]:
        self._state = _ORDERS
        self._bids: dict[str, Bid] = {}
        self._offers: dict[str, Offer] = {}
        self._pending: dict[str, ClearedTrade] = {}
        self._early_confirms: list[TradeConfirm] = []
        self.matches: list[Match] = []
        if own_order is None or own_order.quantity_kwh == 0:
            return []
        self._book(own_order)[own_order.sender] = own_order
        return [(None, own_order)]

    def _book(self, order: Bid | Offer) -> dict:
        return self._offers if isinstance(order, Offer) else self._bids

    def _handle(self, msg: Message) -> list[Outgoing]:
        if isinstance(msg, _ORDER_KINDS):
            self._on_order(msg)
            return []
        if isinstance(msg, TradeConfirm):
            if self._state in (_ORDERS, _CLEARED):
                self._early_confirms.append(msg)  # a faster peer already confirms
                return []
            return self._on_confirm(msg)
        raise UnexpectedMessage(f"kind={msg.kind!r} is not part of the replicated auction")

    def _on_order(self, order: Bid | Offer) -> None:
        if self._state != _ORDERS:
            raise LateMessage(f"{order_name(order)}: the order book closed at 'clear'")
        if order.sender in self._bids or order.sender in self._offers:
            raise DuplicateMessage(f"{order_name(order)}: one order per sender and interval")
        self.check_order(order, self.envelopes, self.duration_h)
        self._book(order)[order.sender] = order

    def on_phase(self, phase: str, round: int = 0) -> list[Outgoing]:
        """See :meth:`ClearingProtocol.on_phase`; other phases are ignored."""
        if phase == "clear" and self._state == _ORDERS:
            self._clear()
            return []
        if phase == "confirm" and self._state == _CLEARED:
            return self._send_confirms()
        if phase == "schedule" and self._state != _CLOSED:
            self._state = _CLOSED
            self.voided += len(self._pending)
            self._pending = {}
        return []

    def _void_pending(self, peer: str) -> int:
        if self._state == _ORDERS:
            self._bids.pop(peer, None)
            self._offers.pop(peer, None)
        self._early_confirms = [c for c in self._early_confirms if c.sender != peer]
        dropped = [tid for tid, t in self._pending.items() if peer in (t.buyer, t.seller)]
        for tid in dropped:
            del self._pending[tid]
        return len(dropped)

    def _release(self, trade: ClearedTrade) -> None:
        """Nothing to give back: the matching is fixed once the book closed."""

    def _clear(self) -> None:
        self._state = _CLEARED
        self.matches = match_double_auction(list(self._bids.values()), list(self._offers.values()))
        for index, m in enumerate(self.matches):
            if self.sender in (m.buyer, m.seller):
                tid = trade_id(self.interval, m.seller, m.buyer, index)
                self._pending[tid] = ClearedTrade(
                    tid, m.buyer, m.seller, m.quantity_kwh, m.price_eur_per_kwh
                )

    def _send_confirms(self) -> list[Outgoing]:
        self._state = _CONFIRMING
        out: list[Outgoing] = []
        for t in self._pending.values():
            counterparty = t.seller if t.buyer == self.sender else t.buyer
            confirm = TradeConfirm(
                sender=self.sender,
                interval=self.interval,
                seq=self.next_seq(),
                trade_id=t.trade_id,
                buyer=t.buyer,
                seller=t.seller,
                quantity_kwh=t.quantity_kwh,
                price_eur_per_kwh=t.price_eur_per_kwh,
                accepted=True,
                round=0,
            )
            out.append((counterparty, confirm))
        early, self._early_confirms = self._early_confirms, []
        for confirm in early:
            try:
                out += self._on_confirm(confirm)
            except REFUSALS as exc:
                out += self.refuse(confirm, exc)
        return out

    def _on_confirm(self, c: TradeConfirm) -> list[Outgoing]:
        what = f"TradeConfirm seq={c.seq} from {c.sender!r}: trade_id={c.trade_id!r}"
        if self._state == _CLOSED:
            raise LateMessage(f"{what}: confirms closed at 'schedule'")
        trade = self._pending.get(c.trade_id)
        if trade is None:
            if c.trade_id in self._final:
                raise DuplicateMessage(f"{what} is already confirmed")
            raise UnexpectedMessage(f"{what} is not one of this peer's open trades")
        counterparty = trade.seller if trade.buyer == self.sender else trade.buyer
        if c.sender != counterparty:
            raise UnexpectedMessage(f"{what}: the counterparty is {counterparty!r}")
        del self._pending[c.trade_id]
        if not c.accepted:
            self.voided += 1
            return []
        theirs = (c.buyer, c.seller, c.quantity_kwh, c.price_eur_per_kwh, c.round)
        ours = (trade.buyer, trade.seller, trade.quantity_kwh, trade.price_eur_per_kwh, 0)
        if theirs != ours:
            self.voided += 1
            raise TradeMismatch(
                f"{what}: (buyer, seller, quantity_kwh, price_eur_per_kwh, round)={theirs!r}, "
                f"this peer computed {ours!r}; trade voided"
            )
        self.finalize(trade)
        return []
