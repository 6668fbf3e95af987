"""Property tests of both clearing protocols over random orders and envelopes.

Each peer runs its own protocol instance; :class:`LocalRouter` delivers every message
before the next clock tick. The market strategy and helpers are in ``tests/helpers.py``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.clearing import LocalRouter, match_double_auction
from agents.clearing.bilateral import MIN_TRADE_KWH
from agents.clearing.validation import ENVELOPE_TOLERANCE_KWH
from messaging.messages import Bid, Offer, Trade, TradeConfirm
from tests.helpers import (
    INTERVAL,
    PROTOCOLS,
    Market,
    agreed_trades,
    all_trades,
    make_peers,
    markets,
    payment_eur,
    protocol_messages,
    run_market,
)


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
