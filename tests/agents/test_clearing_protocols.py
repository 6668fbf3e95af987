"""Property tests of both clearing protocols over random orders and envelopes.

Each peer runs its own protocol instance; :class:`LocalRouter` delivers every message
before the next clock tick. The market strategy and helpers here are shared with the
other ``test_clearing_*`` files.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.clearing import LocalRouter, make_protocol, match_double_auction
from agents.clearing.bilateral import MIN_TRADE_KWH
from agents.clearing.protocol import ClearedTrade
from agents.clearing.validation import ENVELOPE_TOLERANCE_KWH
from messaging.messages import Bid, Envelope, Error, Offer, Trade, TradeConfirm

PROTOCOLS = ("auction", "bilateral")
INTERVAL = 5
#: A hand-made four-peer market (two buyers, two sellers) used by several test files.
FOUR_PEER_ENVELOPES = {p: Envelope(p, 5.0, 5.0) for p in ("a", "b", "c", "d")}
FOUR_PEER_ORDERS = {
    "a": Bid("a", INTERVAL, 0, 2.0, 0.30),
    "b": Bid("b", INTERVAL, 0, 2.0, 0.25),
    "c": Offer("c", INTERVAL, 0, 3.0, 0.10),
    "d": Offer("d", INTERVAL, 0, 3.0, 0.20),
}


def payment_eur(trade: ClearedTrade, peer: str) -> float:
    """What ``peer`` pays for ``trade`` (cost positive): buyer +q*p, seller -q*p, else 0."""
    amount = trade.quantity_kwh * trade.price_eur_per_kwh
    if peer == trade.buyer:
        return amount
    return -amount if peer == trade.seller else 0.0


def agreed_trades(finals: dict[str, list[ClearedTrade]]) -> list[ClearedTrade]:
    """Trades both the buyer and the seller report identically, in trade-id order."""
    reported = {(peer, t) for peer, trades in finals.items() for t in trades}
    agreed = {t for peer, t in reported if peer == t.buyer and (t.seller, t) in reported}
    return sorted(agreed, key=lambda t: t.trade_id)


@dataclass(frozen=True)
class Market:
    """One interval's inputs: public envelopes, each peer's order (or none), duration."""

    envelopes: dict[str, Envelope]
    orders: dict[str, Bid | Offer]
    duration_h: float


def seq_counter(start: int = 1) -> Callable[[], int]:
    """A ``next_seq`` source; orders built by :func:`markets` use seq 0."""
    counter = itertools.count(start)
    return lambda: next(counter)


def make_peers(name: str, market: Market, **options) -> dict[str, object]:
    """One protocol instance per prosumer of ``market``."""
    return {p: make_protocol(name, p, seq_counter(), **options) for p in market.envelopes}


def run_market(name: str, market: Market, drop=None, **options):
    """Run one interval; return (router, peers, final trades by peer)."""
    peers = make_peers(name, market, **options)
    router = LocalRouter(peers, drop=drop)
    finals = router.run(INTERVAL, market.orders, market.envelopes, market.duration_h)
    return router, peers, finals


PRICES = st.one_of(
    st.sampled_from([0.05, 0.1, 0.15, 0.2, 0.3]),  # a small set makes ties frequent
    st.floats(min_value=0.0, max_value=0.5, allow_nan=False),
)
LIMITS_KW = st.floats(min_value=0.0, max_value=10.0, allow_nan=False)
SIDES = st.sampled_from(["buy", "sell", "buy", "sell", "none"])


@st.composite
def markets(draw: st.DrawFn, min_peers: int = 2, max_peers: int = 10) -> Market:
    """Random envelopes and valid orders (inside each sender's envelope) of honest peers."""
    n = draw(st.integers(min_value=min_peers, max_value=max_peers))
    duration_h = draw(st.sampled_from([0.25, 0.5, 1.0]))
    envelopes, orders = {}, {}
    for k in range(n):
        peer = f"p{k:02d}"
        env = Envelope(peer, draw(LIMITS_KW), draw(LIMITS_KW))
        envelopes[peer] = env
        side = draw(SIDES)
        if side == "none":
            continue
        cls, limit_kw = (Bid, env.import_kw) if side == "buy" else (Offer, env.export_kw)
        limit_kwh = limit_kw * duration_h
        quantity = draw(
            st.one_of(st.just(limit_kwh), st.floats(min_value=0.0, max_value=limit_kwh))
        )
        orders[peer] = cls(peer, INTERVAL, 0, quantity, draw(PRICES))
    return Market(envelopes, orders, duration_h)


def all_trades(finals: dict[str, list[ClearedTrade]]) -> list[ClearedTrade]:
    """Every distinct final trade reported by any peer."""
    return sorted({t for trades in finals.values() for t in trades}, key=lambda t: t.trade_id)


def protocol_messages(router: LocalRouter) -> list:
    """The sent messages that are not ``Error`` replies."""
    return [s for s in router.sent if not isinstance(s[2], Error)]


@pytest.mark.parametrize("name", PROTOCOLS)
@given(market=markets())
def test_each_trade_once_per_side_and_identical(name: str, market: Market) -> None:
    router, peers, finals = run_market(name, market)
    for trade in all_trades(finals):
        holders = [p for p, trades in finals.items() if trade in trades]
        assert holders == sorted([trade.buyer, trade.seller])
        assert trade.buyer != trade.seller
    for peer, trades in finals.items():
        assert len({t.trade_id for t in trades}) == len(trades)
        assert all(peer in (t.buyer, t.seller) for t in trades)
    assert agreed_trades(finals) == all_trades(finals)
    assert all(p.refused == [] and p.voided == 0 for p in peers.values())
    assert router.undeliverable == []


@pytest.mark.parametrize("name", PROTOCOLS)
@given(market=markets())
def test_payments_sum_to_zero(name: str, market: Market) -> None:
    _, _, finals = run_market(name, market)
    payments = [payment_eur(t, peer) for peer, trades in finals.items() for t in trades]
    assert math.fsum(payments) == 0.0


@pytest.mark.parametrize("name", PROTOCOLS)
@given(market=markets())
def test_traded_within_order_within_envelope(name: str, market: Market) -> None:
    _, _, finals = run_market(name, market)
    traded: dict[str, Fraction] = defaultdict(Fraction)
    for t in all_trades(finals):
        traded[t.buyer] += Fraction(t.quantity_kwh)
        traded[t.seller] += Fraction(t.quantity_kwh)
    for peer, kwh in traded.items():
        order = market.orders[peer]
        env = market.envelopes[peer]
        limit_kw = env.export_kw if isinstance(order, Offer) else env.import_kw
        assert kwh <= Fraction(order.quantity_kwh)
        assert order.quantity_kwh <= limit_kw * market.duration_h + ENVELOPE_TOLERANCE_KWH
    for t in all_trades(finals):
        assert isinstance(market.orders[t.buyer], Bid)
        assert isinstance(market.orders[t.seller], Offer)
        assert t.quantity_kwh > 0


@pytest.mark.parametrize("name", PROTOCOLS)
@given(market=markets())
def test_price_between_ask_and_limit(name: str, market: Market) -> None:
    _, _, finals = run_market(name, market)
    for t in all_trades(finals):
        ask = market.orders[t.seller].limit_price_eur_per_kwh
        limit = market.orders[t.buyer].limit_price_eur_per_kwh
        assert ask <= t.price_eur_per_kwh <= limit


@pytest.mark.parametrize("name", PROTOCOLS)
@given(market=markets())
def test_deterministic(name: str, market: Market) -> None:
    first, _, finals_1 = run_market(name, market)
    second, _, finals_2 = run_market(name, market)
    assert finals_1 == finals_2
    assert first.sent == second.sent


@given(market=markets())
def test_auction_peers_agree_with_the_pure_matcher(market: Market) -> None:
    _, peers, finals = run_market("auction", market)
    bids = [o for o in market.orders.values() if isinstance(o, Bid)]
    offers = [o for o in market.orders.values() if isinstance(o, Offer)]
    expected = match_double_auction(bids, offers)
    assert all(p.matches == expected for p in peers.values())
    got = [(t.buyer, t.seller, t.quantity_kwh, t.price_eur_per_kwh) for t in all_trades(finals)]
    want = [(m.buyer, m.seller, m.quantity_kwh, m.price_eur_per_kwh) for m in expected]
    assert sorted(got) == sorted(want)


@given(market=markets())
def test_auction_message_count(market: Market) -> None:
    router, _, finals = run_market("auction", market)
    sent = protocol_messages(router)
    n_orders = sum(1 for o in market.orders.values() if o.quantity_kwh > 0)
    # every order broadcast, two directed confirms per trade (docs/protocol.md)
    assert sum(1 for _, to, _ in sent if to is None) == n_orders
    assert sum(1 for _, to, _ in sent if to is not None) == 2 * len(all_trades(finals))
    assert {type(m) for _, _, m in sent} <= {Bid, Offer, TradeConfirm}


@given(market=markets(), rounds=st.integers(min_value=1, max_value=10))
def test_bilateral_message_count_and_round_bound(market: Market, rounds: int) -> None:
    router, _, finals = run_market("bilateral", market, rounds=rounds)
    sent = protocol_messages(router)
    requests = [m for _, _, m in sent if isinstance(m, Trade)]
    n_offers = sum(1 for o in market.orders.values() if isinstance(o, Offer) and o.quantity_kwh)
    n_bids = sum(1 for o in market.orders.values() if isinstance(o, Bid) and o.quantity_kwh)
    # offers broadcast, each request and its answer directed; each buyer asks each seller
    # at most once, once per round (docs/protocol.md)
    assert sum(1 for _, to, _ in sent if to is None) == n_offers
    assert sum(1 for _, to, _ in sent if to is not None) == 2 * len(requests)
    assert len(all_trades(finals)) <= len(requests)
    assert len(requests) <= n_bids * min(rounds, n_offers)
    assert all(1 <= r.round <= rounds for r in requests)
    per_buyer_round = [(r.buyer, r.round) for r in requests]
    assert len(per_buyer_round) == len(set(per_buyer_round))


@given(market=markets())
def test_bilateral_leaves_no_profitable_pair_with_enough_rounds(market: Market) -> None:
    n_offers = sum(1 for o in market.orders.values() if isinstance(o, Offer))
    _, _, finals = run_market("bilateral", market, rounds=max(1, n_offers))
    traded: dict[str, Fraction] = defaultdict(Fraction)
    for t in all_trades(finals):
        traded[t.buyer] += Fraction(t.quantity_kwh)
        traded[t.seller] += Fraction(t.quantity_kwh)

    def left(order: Bid | Offer) -> Fraction:
        return Fraction(order.quantity_kwh) - traded[order.sender]

    for bid in (o for o in market.orders.values() if isinstance(o, Bid)):
        for offer in (o for o in market.orders.values() if isinstance(o, Offer)):
            if offer.limit_price_eur_per_kwh <= bid.limit_price_eur_per_kwh:
                assert min(left(bid), left(offer)) < MIN_TRADE_KWH


@pytest.mark.parametrize("name", PROTOCOLS)
@given(market=markets(), rnd=st.randoms(use_true_random=False))
def test_arrival_order_within_a_phase_does_not_matter(name: str, market: Market, rnd) -> None:
    _, _, fifo = run_market(name, market)
    peers = make_peers(name, market)
    router = LocalRouter(peers, pick=rnd.randrange)
    shuffled = router.run(INTERVAL, market.orders, market.envelopes, market.duration_h)
    assert shuffled == fifo
    assert all(p.refused == [] and p.voided == 0 for p in peers.values())
