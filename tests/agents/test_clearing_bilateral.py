"""The bilateral protocol's rules, round bound and behaviour when messages go wrong."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from agents.clearing import BilateralClearing, LocalRouter, trade_id
from agents.clearing.bilateral import allocate, best_seller, bilateral_ticks
from messaging.messages import Trade, TradeConfirm
from tests.helpers import (
    FOUR_PEER_ENVELOPES,
    FOUR_PEER_ORDERS,
    INTERVAL,
    Market,
    agreed_trades,
    all_trades,
    markets,
    run_market,
    seq_counter,
)

ENVELOPES = FOUR_PEER_ENVELOPES
ORDERS = FOUR_PEER_ORDERS


def request(buyer: str, seller: str, kwh: float, price: float, round: int = 1) -> Trade:
    """A buyer's request as the protocol builds it."""
    tid = trade_id(INTERVAL, seller, buyer, round)
    return Trade(buyer, INTERVAL, 50 + round, tid, buyer, seller, kwh, price, round)


def started(rounds: int = 8) -> tuple[LocalRouter, dict[str, BilateralClearing]]:
    """Four peers with :data:`ORDERS`, offers delivered, before the first round."""
    peers = {p: BilateralClearing(p, seq_counter(), rounds) for p in ENVELOPES}
    router = LocalRouter(peers)
    router.start(INTERVAL, ORDERS, ENVELOPES, 1.0)
    return router, peers


def test_hand_worked_interval() -> None:
    router, _ = started()
    finals = router.finish()
    trades = [(t.buyer, t.seller, t.quantity_kwh, t.price_eur_per_kwh) for t in all_trades(finals)]
    # Round 1: both ask c (ask 0.10); c serves a (price 0.20) before b (0.175): 2 + 1 kWh.
    # Round 2: b asks d for its last kWh at the midpoint of 0.20 and 0.25.
    assert sorted(trades) == [
        ("a", "c", 2.0, pytest.approx(0.2)),
        ("b", "c", 1.0, pytest.approx(0.175)),
        ("b", "d", 1.0, pytest.approx(0.225)),
    ]


def test_best_seller_lowest_ask_then_id_and_skips_excluded() -> None:
    asks = {"s2": 0.1, "s1": 0.1, "s3": 0.05, "s4": 0.5}
    assert best_seller(0.3, asks, excluded=()) == "s3"
    assert best_seller(0.3, asks, excluded={"s3"}) == "s1"
    assert best_seller(0.3, asks, excluded={"s3", "s1"}) == "s2"
    assert best_seller(0.04, asks, excluded=()) is None


def test_allocate_in_price_then_id_order_with_partial_accept() -> None:
    reqs = [request("b", "s", 2.0, 0.2), request("a", "s", 2.0, 0.2), request("c", "s", 1.0, 0.3)]
    answers = [(r.buyer, kwh) for r, kwh in allocate(Fraction(4), reqs)]
    assert answers == [("c", 1.0), ("a", 2.0), ("b", 1.0)]


def test_ticks_alternate_clear_and_confirm_per_round() -> None:
    assert bilateral_ticks(2) == (
        ("clear", 1),
        ("confirm", 1),
        ("clear", 2),
        ("confirm", 2),
        ("schedule", 0),
    )


@given(market=markets(), rounds=st.integers(min_value=1, max_value=3))
def test_round_bound_respected(market: Market, rounds: int) -> None:
    router, _, _ = run_market("bilateral", market, rounds=rounds)
    requests = [m for _, _, m in router.sent if isinstance(m, Trade)]
    per_buyer: dict[str, int] = {}
    for r in requests:
        assert 1 <= r.round <= rounds
        per_buyer[r.buyer] = per_buyer.get(r.buyer, 0) + 1
    assert all(n <= rounds for n in per_buyer.values())


@given(market=markets(), data=st.data())
def test_lost_answer_voids_only_that_trade(market: Market, data) -> None:
    _, _, honest = run_market("bilateral", market, rounds=1)
    trades = all_trades(honest)
    assume(trades)
    lost = data.draw(st.sampled_from(trades))

    def drop(src: str, dst: str, msg) -> bool:
        return isinstance(msg, TradeConfirm) and msg.trade_id == lost.trade_id

    _, peers, finals = run_market("bilateral", market, drop=drop, rounds=1)
    assert peers[lost.buyer].voided == 1 and lost not in finals[lost.buyer]
    assert lost in finals[lost.seller]  # the seller committed when it accepted
    assert agreed_trades(finals) == [t for t in trades if t != lost]


def test_unanswered_request_excludes_that_seller_next_round() -> None:
    router, peers = started()
    router.drop = lambda src, dst, msg: isinstance(msg, TradeConfirm) and (src, dst) == ("c", "a")
    finals = router.finish()
    asked = [
        (m.seller, m.round) for _, _, m in router.sent if isinstance(m, Trade) and m.buyer == "a"
    ]
    assert asked == [("c", 1), ("d", 2)]  # c's accept was lost: a asks d, never c again
    assert peers["a"].voided == 1
    assert [(t.seller, t.quantity_kwh) for t in finals["a"]] == [("d", 2.0)]
    assert ("a", 2.0) in [(t.buyer, t.quantity_kwh) for t in finals["c"]]  # c committed
    assert all(t.seller != "c" or t.buyer != "a" for t in agreed_trades(finals))


def seller_after_round_1() -> BilateralClearing:
    """Seller c after the first clear tick (no requests delivered yet)."""
    _, peers = started()
    c = peers["c"]
    c.on_phase("clear", 1)
    return c


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (request("a", "c", 2.0, 0.05), "invalid_value"),  # below the ask 0.10
        (request("a", "c", 6.0, 0.2), "outside_envelope"),  # a imports at most 5 kWh
        (request("a", "c", 2.0, 0.2, round=9), "unexpected"),  # beyond the round bound
        (replace(request("a", "c", 2.0, 0.2), buyer="b"), "unexpected"),  # not the sender's
        (replace(request("a", "c", 2.0, 0.2), trade_id="5:1:0"), "invalid_value"),
        (replace(request("a", "c", 2.0, 0.2), sender="zz", buyer="zz"), "unknown_sender"),
    ],
)
def test_bad_request_refused(bad: Trade, reason: str) -> None:
    c = seller_after_round_1()
    replies = c.on_message(bad)
    assert [r.reason for r in c.refused] == [reason]
    assert replies[0][0] == bad.sender and replies[0][1].reason.startswith(reason)
    good = request("b", "c", 1.0, 0.175)
    assert c.on_message(good) == []
    assert [(m.buyer, m.quantity_kwh, m.accepted) for _, m in c.on_phase("confirm", 1)] == [
        ("b", 1.0, True)
    ]


def test_duplicate_and_late_requests_refused() -> None:
    c = seller_after_round_1()
    first = request("a", "c", 2.0, 0.2)
    c.on_message(first)
    c.on_message(replace(first, seq=99))  # a second request of a in round 1
    c.on_phase("confirm", 1)
    c.on_message(request("b", "c", 1.0, 0.175))  # round 1 is answered already
    assert [r.reason for r in c.refused] == ["duplicate", "late"]
    assert [t.buyer for t in c.final_trades()] == ["a"]


def test_request_to_a_buyer_is_refused() -> None:
    _, peers = started()
    a = peers["a"]
    a.on_message(request("b", "a", 1.0, 0.2))
    assert [r.reason for r in a.refused] == ["unexpected"]


def test_answer_after_the_round_closed_is_late() -> None:
    _, peers = started()
    a, c = peers["a"], peers["c"]
    ((_, req),) = a.on_phase("clear", 1)
    c.on_phase("clear", 1)
    c.on_message(req)
    ((_, answer),) = c.on_phase("confirm", 1)
    a.on_phase("clear", 2)  # a gave up on c and asks d
    assert a.on_message(answer)[0][1].reason.startswith("late")
    assert a.final_trades() == [] and a.voided == 1


def test_answer_with_a_larger_quantity_is_a_mismatch() -> None:
    _, peers = started()
    a = peers["a"]
    ((_, req),) = a.on_phase("clear", 1)
    answer = TradeConfirm(
        sender="c",
        interval=INTERVAL,
        seq=77,
        trade_id=req.trade_id,
        buyer="a",
        seller="c",
        quantity_kwh=req.quantity_kwh + 1,
        price_eur_per_kwh=req.price_eur_per_kwh,
        accepted=True,
        round=1,
    )
    assert a.on_message(answer)[0][1].reason.startswith("mismatch")
    assert a.final_trades() == [] and a.voided == 1
