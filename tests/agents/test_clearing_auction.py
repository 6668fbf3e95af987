"""The replicated auction when messages are lost, forged, early or late."""

from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction

from hypothesis import assume, given
from hypothesis import strategies as st

from agents.clearing import LocalRouter, ReplicatedAuction
from messaging.messages import Bid, Offer, TradeConfirm
from tests.helpers import (
    FOUR_PEER_ENVELOPES,
    FOUR_PEER_ORDERS,
    INTERVAL,
    Market,
    agreed_trades,
    all_trades,
    make_peers,
    markets,
    payment_eur,
    run_market,
    seq_counter,
)

ENVELOPES = FOUR_PEER_ENVELOPES
ORDERS = FOUR_PEER_ORDERS


def started_peers() -> dict[str, ReplicatedAuction]:
    """Four peers with :data:`ORDERS`, every order delivered, before the ``clear`` tick."""
    peers = {p: ReplicatedAuction(p, seq_counter()) for p in ENVELOPES}
    router = LocalRouter(peers)
    router.start(INTERVAL, ORDERS, ENVELOPES, 1.0)
    return peers


def confirm_of(peer: ReplicatedAuction) -> list[tuple[str, TradeConfirm]]:
    """The confirms ``peer`` sends at its ``confirm`` tick (after ``clear``)."""
    peer.on_phase("clear")
    return peer.on_phase("confirm")


def test_hand_worked_interval() -> None:
    finals = LocalRouter(started_peers()).finish()
    # a (0.30) buys 2 from c (0.10); b (0.25) buys 1 from c and 1 from d (0.20): price 0.225.
    trades = [(t.buyer, t.seller, t.quantity_kwh, t.price_eur_per_kwh) for t in all_trades(finals)]
    assert sorted(trades) == [
        ("a", "c", 2.0, 0.225),
        ("b", "c", 1.0, 0.225),
        ("b", "d", 1.0, 0.225),
    ]


@given(market=markets(), data=st.data())
def test_lost_confirm_voids_only_that_trade(market: Market, data) -> None:
    _, _, honest = run_market("auction", market)
    trades = all_trades(honest)
    assume(trades)
    lost = data.draw(st.sampled_from(trades))
    to_buyer = data.draw(st.booleans())
    src, dst = (lost.seller, lost.buyer) if to_buyer else (lost.buyer, lost.seller)

    def drop(s: str, d: str, msg) -> bool:
        return (
            isinstance(msg, TradeConfirm)
            and msg.trade_id == lost.trade_id
            and (s, d)
            == (
                src,
                dst,
            )
        )

    _, peers, finals = run_market("auction", market, drop=drop)
    assert peers[dst].voided == 1 and lost not in finals[dst]
    assert lost in finals[src]  # the sender of the lost message cannot know
    assert sum(p.voided for p in peers.values()) == 1
    assert agreed_trades(finals) == [t for t in trades if t != lost]


def test_mismatching_confirm_voids_the_trade_and_is_refused() -> None:
    peers = started_peers()
    (to, real), *_ = confirm_of(peers["c"])
    forged = replace(real, seq=100, quantity_kwh=9.0)
    peers[to].on_phase("clear")
    peers[to].on_phase("confirm")
    replies = peers[to].on_message(forged)
    assert [r.reason for r in peers[to].refused] == ["mismatch"]
    assert replies[0][0] == "c" and replies[0][1].reason.startswith("mismatch")
    assert peers[to].voided == 1
    assert peers[to].on_message(real)[0][1].reason.startswith("unexpected")  # no longer open
    assert all(t.trade_id != real.trade_id for t in peers[to].final_trades())


def test_rejecting_confirm_voids_without_refusal() -> None:
    peers = started_peers()
    (to, real), *_ = confirm_of(peers["c"])
    confirm_of(peers[to])
    assert peers[to].on_message(replace(real, accepted=False, quantity_kwh=0.0)) == []
    assert peers[to].voided == 1 and peers[to].refused == []


def test_confirm_from_a_third_party_is_refused_and_changes_nothing() -> None:
    peers = started_peers()
    (to, real), *_ = confirm_of(peers["c"])
    confirm_of(peers[to])
    third = "d" if to != "d" else "b"
    peers[to].on_message(replace(real, sender=third))
    assert [r.reason for r in peers[to].refused] == ["unexpected"]
    assert peers[to].on_message(real) == [] and peers[to].voided == 0
    assert real.trade_id in {t.trade_id for t in peers[to].final_trades()}


def test_early_confirm_is_held_until_this_peer_confirms() -> None:
    peers = started_peers()
    (to, real), *_ = confirm_of(peers["c"])
    assert peers[to].on_message(real) == []  # before its own clear tick
    confirm_of(peers[to])
    assert real.trade_id in {t.trade_id for t in peers[to].final_trades()}


def test_confirm_after_schedule_is_late_and_voided() -> None:
    peers = started_peers()
    (to, real), *_ = confirm_of(peers["c"])
    confirm_of(peers[to])
    peers[to].on_phase("schedule")
    assert peers[to].on_message(real)[0][1].reason.startswith("late")
    assert peers[to].voided == 1 and peers[to].final_trades() == []


def test_order_of_next_interval_is_held_until_start() -> None:
    peer = ReplicatedAuction("a", seq_counter())
    early = Offer("c", INTERVAL + 1, 0, 1.0, 0.1)
    assert peer.on_message(early) == []
    peer.start(INTERVAL + 1, Bid("a", INTERVAL + 1, 9, 1.0, 0.3), ENVELOPES, 1.0)
    assert peer.refused == []
    peer.on_phase("clear")
    assert [(m.buyer, m.seller) for m in peer.matches] == [("a", "c")]


@given(market=markets(), data=st.data())
def test_a_lost_order_breaks_agreement_but_not_conservation(market: Market, data) -> None:
    orders = [o for o in market.orders.values() if o.quantity_kwh > 0]
    assume(orders and len(market.envelopes) > 2)
    lost = data.draw(st.sampled_from(orders))
    victim = data.draw(st.sampled_from(sorted(p for p in market.envelopes if p != lost.sender)))
    peers = make_peers("auction", market)
    router = LocalRouter(peers, drop=lambda s, d, m: m is lost and d == victim)
    finals = router.run(INTERVAL, market.orders, market.envelopes, market.duration_h)
    agreed = agreed_trades(finals)
    assert math.fsum(payment_eur(t, p) for t in agreed for p in (t.buyer, t.seller)) == 0.0
    for peer in market.orders:
        kwh = sum(Fraction(t.quantity_kwh) for t in agreed if peer in (t.buyer, t.seller))
        assert kwh <= Fraction(market.orders[peer].quantity_kwh)


def test_held_message_of_a_skipped_interval_is_refused_as_late() -> None:
    peer = ReplicatedAuction("a", seq_counter())
    peer.on_message(Offer("c", INTERVAL + 1, 0, 1.0, 0.1))
    out = peer.start(INTERVAL + 2, None, ENVELOPES, 1.0)
    assert [r.reason for r in peer.refused] == ["late"]
    assert [to for to, _ in out] == ["c"]
