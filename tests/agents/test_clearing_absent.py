"""``void_counterparty``: a peer the DSO declares absent leaves no half-settled trade.

The absent peer is taken out of the :class:`LocalRouter` (it died) and every survivor is
told, as the DSO's ``Absent`` broadcast would; the survivors' results must be those of
the run without it: its trades voided on every side, the others' trades unchanged.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given

from agents.clearing import LocalRouter, make_protocol
from messaging.messages import Envelope, Offer
from tests.helpers import (
    INTERVAL,
    PROTOCOLS,
    Market,
    agreed_trades,
    all_trades,
    make_peers,
    markets,
    payment_eur,
    run_market,
    seq_counter,
)

PAIR = ("p00", "p01")


def _declare_absent(router: LocalRouter, absent: str) -> dict[str, int]:
    """``absent`` dies: leave the router; every survivor voids it. Return voids by peer."""
    router.peers.pop(absent)
    return {p: peer.void_counterparty(absent) for p, peer in router.peers.items()}


def _run_until_schedule(name: str, market: Market, absent: str):
    """Clear ``market`` through every tick but ``schedule``; then ``absent`` dies."""
    peers = make_peers(name, market)
    router = LocalRouter(peers)
    router.start(INTERVAL, market.orders, market.envelopes, market.duration_h)
    ticks = next(iter(peers.values())).ticks()
    for phase, round_ in ticks[:-1]:
        router.tick(phase, round_)
    before = {p: peer.final_trades() for p, peer in peers.items()}
    voids = _declare_absent(router, absent)
    router.tick(*ticks[-1])
    finals = {p: peer.final_trades() for p, peer in router.peers.items()}
    return peers, before, voids, finals


@pytest.mark.parametrize("name", PROTOCOLS)
@given(market=markets())
def test_committed_trades_with_the_absent_peer_are_voided_on_every_side(
    name: str, market: Market
) -> None:
    _, _, reference = run_market(name, market)
    traded = all_trades(reference)
    absent = traded[0].buyer if traded else next(iter(market.envelopes))
    peers, before, voids, finals = _run_until_schedule(name, market, absent)
    assert before == reference  # every trade was committed before the peer died
    for peer, trades in finals.items():
        mine = [t for t in reference[peer] if absent not in (t.buyer, t.seller)]
        assert trades == mine  # the others' trades stand, the absent peer's are gone
        assert voids[peer] == len(reference[peer]) - len(mine)
        assert peers[peer].voided == voids[peer]
    assert agreed_trades(finals) == all_trades(finals)
    payments = [payment_eur(t, p) for p, trades in finals.items() for t in trades]
    assert math.fsum(payments) == 0.0


@pytest.mark.parametrize("name", PROTOCOLS)
@given(market=markets(min_peers=3))
def test_absent_before_clearing_is_a_market_without_its_order(name: str, market: Market) -> None:
    absent = next(iter(market.envelopes))
    peers = make_peers(name, market)
    router = LocalRouter(peers)
    router.start(INTERVAL, market.orders, market.envelopes, market.duration_h)
    _declare_absent(router, absent)
    finals = router.finish()
    without = {p: o for p, o in market.orders.items() if p != absent}
    _, _, reference = run_market(name, Market(market.envelopes, without, market.duration_h))
    reference.pop(absent)
    assert finals == reference


@pytest.mark.parametrize("name", PROTOCOLS)
def test_messages_of_an_absent_peer_are_refused_for_the_interval(name: str) -> None:
    envelopes = {p: Envelope(p, 5.0, 5.0) for p in PAIR}
    absent, survivor = PAIR
    peer = make_protocol(name, survivor, seq_counter())
    peer.start(INTERVAL, None, envelopes, 1.0)
    assert peer.void_counterparty(absent) == 0
    replies = peer.on_message(Offer(absent, INTERVAL, 7, 1.0, 0.1))
    assert [r.reason for r in peer.refused] == ["absent_sender"]
    assert [(to, msg.refused_kind) for to, msg in replies] == [(absent, "Offer")]
    peer.start(INTERVAL + 1, None, envelopes, 1.0)  # absent for one interval only
    assert peer.on_message(Offer(absent, INTERVAL + 1, 8, 1.0, 0.1)) == []
    assert peer.refused == []
