"""Iterative bilateral clearing: price-ordered requests and accept/reject rounds.

One interval, for each peer (see ``docs/protocol.md`` for the message sequence):

1. :meth:`start` (``orders`` phase): a seller broadcasts its ``Offer``; a buyer keeps its
   ``Bid`` private. Every peer checks the offers it receives against the public envelopes.
2. For each round ``r = 1..R`` (``R`` = ``rounds``, at most :data:`MAX_ROUNDS`):

   * tick ``("clear", r)``: the offers close (r = 1). Each buyer with residual demand (at
     least :data:`MIN_TRADE_KWH`) sends
     one ``Trade`` request (``round=r``) to the best seller it has not been refused by
     (:func:`best_seller`) for ``min(residual, that seller's advertised remaining)`` at the
     midpoint of the seller's ask and the buyer's limit.
   * tick ``("confirm", r)``: each seller answers that round's requests in order (price
     descending, then buyer id), accepting up to its remaining quantity (partial accepts
     allowed) with ``TradeConfirm(accepted=True, quantity_kwh=accepted)`` or refusing with
     ``accepted=False`` and quantity 0 (:func:`allocate`). The seller commits on accepting.
3. A buyer's trade is final when the seller's accept of its own request arrives. A request
   unanswered by the next tick counts as refused (and voided); a refusing, partially
   accepting or mismatching seller is not asked again. Tick ``schedule`` ends the interval.

An ``Absent`` peer (:meth:`void_counterparty`) is excluded as a seller; its offer, open
request and unanswered requests are dropped, and its final trades voided, which gives
the quantity back to this peer (a buyer's residual demand, a seller's remaining offer).

A buyer's view of a seller's remaining quantity is the advertised offer minus what it
bought there itself; it learns about other buyers' purchases only through refusals.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from fractions import Fraction

from agents.clearing.errors import (
    DuplicateMessage,
    InvalidOrder,
    InvalidSetting,
    LateMessage,
    TradeMismatch,
    UnexpectedMessage,
)
from agents.clearing.matching import midpoint_price, round_down_kwh, trade_id
from agents.clearing.protocol import DEFAULT_ROUNDS, ClearedTrade, ClearingPeer
from agents.clearing.validation import check_within_envelope, order_name
from messaging.messages import Bid, Message, Offer, Outgoing, Trade, TradeConfirm

#: Upper bound on the configured rounds per interval.
MAX_ROUNDS = 64
#: Smallest quantity requested or accepted, kWh: float dust left by rounding is not traded.
MIN_TRADE_KWH = 1e-9
_MIN_TRADE = Fraction(MIN_TRADE_KWH)


def bilateral_ticks(rounds: int) -> tuple[tuple[str, int], ...]:
    """Clock ticks of one interval: ``("clear", r), ("confirm", r)`` per round, then schedule."""
    ticks = [(phase, r) for r in range(1, rounds + 1) for phase in ("clear", "confirm")]
    return (*ticks, ("schedule", 0))


def best_seller(
    limit_eur_per_kwh: float, asks_eur_per_kwh: Mapping[str, float], excluded: Collection[str]
) -> str | None:
    """Seller with the lowest ask not above the limit (ties: lowest id), not excluded."""
    candidates = [
        (ask, seller)
        for seller, ask in asks_eur_per_kwh.items()
        if ask <= limit_eur_per_kwh and seller not in excluded
    ]
    return min(candidates)[1] if candidates else None


def allocate(remaining_kwh: Fraction, requests: Iterable[Trade]) -> list[tuple[Trade, float]]:
    """Accepted kWh per request, in answer order (price descending, then buyer id).

    Each request gets ``min(request, what is left)``, rounded toward zero, so the exact sum
    of the accepted quantities never exceeds ``remaining_kwh``; less than
    :data:`MIN_TRADE_KWH` is refused (0).
    """
    answers = []
    for request in sorted(requests, key=lambda t: (-t.price_eur_per_kwh, t.buyer)):
        accepted = round_down_kwh(min(Fraction(request.quantity_kwh), remaining_kwh))
        if accepted < MIN_TRADE_KWH:
            accepted = 0.0
        remaining_kwh -= Fraction(accepted)
        answers.append((request, accepted))
    return answers


class BilateralClearing(ClearingPeer):
    """One peer of the iterative bilateral protocol (see the module docstring)."""

    name = "bilateral"

    def __init__(
        self,
        sender: str,
        next_seq: Callable[[], int],
        rounds: int = DEFAULT_ROUNDS,
        *,
        validate_inputs: bool = True,
    ) -> None:
        if type(rounds) is not int or not 1 <= rounds <= MAX_ROUNDS:
            raise InvalidSetting(f"rounds={rounds!r} is not an integer in 1..{MAX_ROUNDS}")
        super().__init__(sender, next_seq, rounds, validate_inputs=validate_inputs)

    @classmethod
    def interval_ticks(cls, rounds: int) -> tuple[tuple[str, int], ...]:
        """See :meth:`ClearingPeer.interval_ticks`."""
        return bilateral_ticks(rounds)

    def _open(self, own_order: Bid | Offer | None) -> list[Outgoing]:
        self._offers_open = True
        self._closed = False
        self._offers: dict[str, Offer] = {}
        # buyer state
        self._bid = own_order if isinstance(own_order, Bid) and own_order.quantity_kwh else None
        self._residual_kwh = Fraction(self._bid.quantity_kwh) if self._bid else Fraction(0)
        self._asks: dict[str, float] = {}
        self._available_kwh: dict[str, Fraction] = {}
        self._excluded: set[str] = set()
        self._requests: dict[str, Trade] = {}
        self._answered: set[str] = set()
        self._open_request: Trade | None = None
        self._last_round = 0
        # seller state
        self._offer = own_order if isinstance(own_order, Offer) and own_order.quantity_kwh else None
        self._remaining_kwh = Fraction(self._offer.quantity_kwh) if self._offer else Fraction(0)
        self._inbox: dict[int, dict[str, Trade]] = {}
        self._answered_through = 0
        return [(None, self._offer)] if self._offer else []

    def _handle(self, msg: Message) -> list[Outgoing]:
        if isinstance(msg, Offer):
            self._on_offer(msg)
        elif isinstance(msg, Trade):
            self._on_request(msg)
        elif isinstance(msg, TradeConfirm):
            self._on_answer(msg)
        elif isinstance(msg, Bid):
            raise UnexpectedMessage(
                f"Bid seq={msg.seq}: bids stay private in the bilateral protocol"
            )
        else:
            raise UnexpectedMessage(f"kind={msg.kind!r} is not part of the bilateral protocol")
        return []

    def on_phase(self, phase: str, round: int = 0) -> list[Outgoing]:
        """See :meth:`ClearingProtocol.on_phase`; other phases and repeated ticks are ignored."""
        if self._closed:
            return []
        if phase == "schedule":
            self._close_request()
            self._closed = True
            self._inbox = {}
            return []
        if not 1 <= round <= self.rounds:
            return []
        if phase == "clear":
            if self._offers_open:
                self._close_offers()
            if self._bid is not None and round > self._last_round:
                self._close_request()
                self._last_round = round
                return self._request(round)
        if phase == "confirm" and self._offer is not None and round > self._answered_through:
            return self._answer(round)
        return []

    def _void_pending(self, peer: str) -> int:
        self._offers.pop(peer, None)
        self._excluded.add(peer)
        count = 0
        if self._open_request is not None and self._open_request.seller == peer:
            self._open_request = None
            count += 1
        for inbox in self._inbox.values():
            count += inbox.pop(peer, None) is not None
        return count

    def _release(self, trade: ClearedTrade) -> None:
        if trade.seller == self.sender:
            self._remaining_kwh += Fraction(trade.quantity_kwh)
        else:
            self._residual_kwh += Fraction(trade.quantity_kwh)

    # buyer side

    def _close_offers(self) -> None:
        """Offers close: a buyer's view of each seller's supply is its advertised quantity."""
        self._offers_open = False
        self._asks = {s: o.limit_price_eur_per_kwh for s, o in self._offers.items()}
        self._available_kwh = {s: Fraction(o.quantity_kwh) for s, o in self._offers.items()}
        self._excluded = {s for s, kwh in self._available_kwh.items() if kwh < _MIN_TRADE}

    def _request(self, round: int) -> list[Outgoing]:
        if self._bid is None or self._residual_kwh < _MIN_TRADE:
            return []
        limit = self._bid.limit_price_eur_per_kwh
        seller = best_seller(limit, self._asks, self._excluded)
        if seller is None:
            return []
        quantity = round_down_kwh(min(self._residual_kwh, self._available_kwh[seller]))
        price = midpoint_price(self._asks[seller], limit)
        tid = trade_id(self.interval, seller, self.sender, round)
        request = Trade(
            sender=self.sender,
            interval=self.interval,
            seq=self.next_seq(),
            trade_id=tid,
            buyer=self.sender,
            seller=seller,
            quantity_kwh=quantity,
            price_eur_per_kwh=price,
            round=round,
        )
        self._requests[tid] = request
        self._open_request = request
        return [(seller, request)]

    def _close_request(self) -> None:
        """An open request still unanswered at the next tick counts as refused and voided."""
        if self._open_request is not None:
            self._excluded.add(self._open_request.seller)
            self.voided += 1
            self._open_request = None

    def _on_answer(self, c: TradeConfirm) -> None:
        what = f"TradeConfirm seq={c.seq} from {c.sender!r}: trade_id={c.trade_id!r}"
        request = self._requests.get(c.trade_id)
        if request is None:
            raise UnexpectedMessage(f"{what} answers no request of this peer")
        if c.sender != request.seller:
            raise UnexpectedMessage(f"{what}: the request went to {request.seller!r}")
        if c.trade_id in self._answered:
            raise DuplicateMessage(f"{what} is already answered")
        if request is not self._open_request:
            raise LateMessage(f"{what}: round {request.round} closed before the answer arrived")
        self._answered.add(c.trade_id)
        self._open_request = None
        theirs = (c.buyer, c.seller, c.price_eur_per_kwh, c.round)
        ours = (request.buyer, request.seller, request.price_eur_per_kwh, request.round)
        if theirs != ours or c.quantity_kwh > request.quantity_kwh:
            self._excluded.add(request.seller)
            self.voided += 1
            raise TradeMismatch(
                f"{what}: (buyer, seller, price_eur_per_kwh, round)={theirs!r} and "
                f"quantity_kwh={c.quantity_kwh!r} do not answer the request {ours!r} for "
                f"{request.quantity_kwh!r} kWh; trade voided"
            )
        if not (c.accepted and c.quantity_kwh > 0):
            self._excluded.add(request.seller)
            return
        bought = Fraction(c.quantity_kwh)
        self._residual_kwh -= bought
        self._available_kwh[request.seller] -= bought
        partial = c.quantity_kwh < request.quantity_kwh  # the seller ran out
        if partial or self._available_kwh[request.seller] < _MIN_TRADE:
            self._excluded.add(request.seller)
        self.finalize(
            ClearedTrade(c.trade_id, c.buyer, c.seller, c.quantity_kwh, c.price_eur_per_kwh)
        )

    # seller side

    def _on_offer(self, offer: Offer) -> None:
        if not self._offers_open:
            raise LateMessage(f"{order_name(offer)}: offers closed at round 1")
        if offer.sender in self._offers:
            raise DuplicateMessage(f"{order_name(offer)}: one offer per sender and interval")
        self.check_order(offer, self.envelopes, self.duration_h)
        if offer.quantity_kwh > 0:
            self._offers[offer.sender] = offer

    def _on_request(self, t: Trade) -> None:
        what = f"Trade seq={t.seq} from {t.sender!r} (round {t.round})"
        if self._offer is None:
            raise UnexpectedMessage(f"{what}: this peer offers nothing this interval")
        if t.seller != self.sender or t.buyer != t.sender:
            raise UnexpectedMessage(
                f"{what}: buyer={t.buyer!r} seller={t.seller!r}, expected the sender to buy "
                f"from {self.sender!r}"
            )
        if not 1 <= t.round <= self.rounds:
            raise UnexpectedMessage(f"{what}: round={t.round} is outside 1..{self.rounds}")
        if self._closed or t.round <= self._answered_through:
            raise LateMessage(f"{what}: round {t.round} is already answered")
        inbox = self._inbox.setdefault(t.round, {})
        if t.buyer in inbox:
            raise DuplicateMessage(f"{what}: one request per buyer and round")
        if t.trade_id != trade_id(self.interval, self.sender, t.buyer, t.round):
            raise InvalidOrder(f"{what}: trade_id={t.trade_id!r} is not the id of this request")
        ask = self._offer.limit_price_eur_per_kwh
        if t.price_eur_per_kwh < ask:
            raise InvalidOrder(f"{what}: price_eur_per_kwh={t.price_eur_per_kwh!r} < ask {ask!r}")
        check_within_envelope(
            t.buyer, t.quantity_kwh, "import", self.envelopes, self.duration_h, what
        )
        inbox[t.buyer] = t

    def _answer(self, round: int) -> list[Outgoing]:
        out: list[Outgoing] = []
        for r in sorted(k for k in self._inbox if k <= round):
            for request, accepted in allocate(self._remaining_kwh, self._inbox.pop(r).values()):
                self._remaining_kwh -= Fraction(accepted)
                out.append((request.buyer, self._confirm(request, accepted)))
        self._answered_through = round
        return out

    def _confirm(self, request: Trade, accepted_kwh: float) -> TradeConfirm:
        accepted = accepted_kwh > 0
        if accepted:
            self.finalize(
                ClearedTrade(
                    request.trade_id,
                    request.buyer,
                    request.seller,
                    accepted_kwh,
                    request.price_eur_per_kwh,
                )
            )
        return TradeConfirm(
            sender=self.sender,
            interval=self.interval,
            seq=self.next_seq(),
            trade_id=request.trade_id,
            buyer=request.buyer,
            seller=request.seller,
            quantity_kwh=accepted_kwh,
            price_eur_per_kwh=request.price_eur_per_kwh,
            accepted=accepted,
            round=request.round,
        )
