"""Bad inputs are refused with their reason, answered with an Error, and change no trade."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.clearing import LocalRouter, make_protocol
from agents.clearing.errors import (
    InvalidOrder,
    InvalidSetting,
    OutsideEnvelope,
    UnexpectedMessage,
    UnknownSender,
)
from messaging.messages import Bid, Envelope, Error, Message, Offer
from tests.helpers import (
    INTERVAL,
    PROTOCOLS,
    Market,
    make_peers,
    markets,
    seq_counter,
)

#: The extra prosumer that sends the bad input; it abstains in the honest run.
X = "x"
X_ENVELOPE = Envelope(X, 1.0, 1.0)


def with_x(market: Market) -> Market:
    """``market`` plus the abstaining prosumer :data:`X` (1 kW each way)."""
    return Market({**market.envelopes, X: X_ENVELOPE}, market.orders, market.duration_h)


def run_injected(
    name: str, market: Market, src: str, bad: Message, after_tick: int | None = None
) -> tuple[LocalRouter, dict, dict]:
    """Run an interval in which ``src`` broadcasts ``bad`` (after tick ``after_tick``)."""
    peers = make_peers(name, market)
    router = LocalRouter(peers)
    router.start(INTERVAL, market.orders, market.envelopes, market.duration_h)
    if after_tick is None:
        router.post(src, [(None, bad)])
        router.flush()
    for index, (phase, round) in enumerate(peers[X].ticks()):
        router.tick(phase, round)
        if index == after_tick:
            router.post(src, [(None, bad)])
            router.flush()
    finals = {p: peer.final_trades() for p, peer in peers.items()}
    return router, peers, finals


def honest_finals(name: str, market: Market) -> dict:
    """Final trades of the same market without the bad input."""
    return LocalRouter(make_peers(name, market)).run(
        INTERVAL, market.orders, market.envelopes, market.duration_h
    )


def limit_kwh(market: Market) -> float:
    """:data:`X`'s envelope in kWh per interval (both directions)."""
    return X_ENVELOPE.export_kw * market.duration_h


BAD_INPUTS = {
    # name: (sender, message factory(market), tick after which it is sent, reason code)
    "outside_envelope": (
        X,
        lambda m: Offer(X, INTERVAL, 1, limit_kwh(m) + 0.5, 0.1),
        None,
        "outside_envelope",
    ),
    "unknown_sender": (
        "stranger",
        lambda m: Offer("stranger", INTERVAL, 1, 0.1, 0.1),
        None,
        "unknown_sender",
    ),
    "past_interval": (X, lambda m: Offer(X, INTERVAL - 1, 1, 0.1, 0.1), None, "late"),
    "after_phase_closed": (X, lambda m: Offer(X, INTERVAL, 1, 0.1, 0.1), 0, "late"),
    "nan_quantity": (X, lambda m: Offer(X, INTERVAL, 1, math.nan, 0.1), None, "invalid_value"),
    "nan_price": (X, lambda m: Offer(X, INTERVAL, 1, 0.1, math.nan), None, "invalid_value"),
    "negative_quantity": (X, lambda m: Offer(X, INTERVAL, 1, -1.0, 0.1), None, "invalid_value"),
}


@pytest.mark.parametrize("name", PROTOCOLS)
@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
@given(market=markets(max_peers=6).map(with_x))
def test_bad_order_refused_without_effect(name: str, case: str, market: Market) -> None:
    src, factory, after_tick, reason = BAD_INPUTS[case]
    bad = factory(market)
    router, peers, finals = run_injected(name, market, src, bad, after_tick)
    receivers = [p for p in peers if p != src]
    for p in receivers:
        assert [(r.sender, r.kind, r.seq, r.reason) for r in peers[p].refused] == [
            (src, "Offer", 1, reason)
        ]
    errors = [(s, to, m) for s, to, m in router.sent if isinstance(m, Error)]
    assert sorted(s for s, _, _ in errors) == receivers
    assert all(to == src and m.refused_seq == 1 for _, to, m in errors)
    assert all(m.refused_kind == "Offer" and m.reason.startswith(reason) for _, _, m in errors)
    assert finals == honest_finals(name, market)


@pytest.mark.parametrize("name", PROTOCOLS)
@given(market=markets(max_peers=6), data=st.data())
def test_replayed_order_refused_as_duplicate(name: str, market: Market, data) -> None:
    sent_orders = [o for o in market.orders.values() if o.quantity_kwh > 0]
    if name == "bilateral":
        sent_orders = [o for o in sent_orders if isinstance(o, Offer)]  # bids stay private
    if not sent_orders:
        return
    order = data.draw(st.sampled_from(sent_orders))
    second = type(order)(order.sender, INTERVAL, 7, order.quantity_kwh / 2, 0.0)
    replay = data.draw(st.sampled_from([order, second]))
    market_x = with_x(market)
    _, peers, finals = run_injected(name, market_x, order.sender, replay)
    for p, peer in peers.items():
        expected = [] if p == order.sender else [(order.sender, replay.seq, "duplicate")]
        assert [(r.sender, r.seq, r.reason) for r in peer.refused] == expected
    assert len(peers[order.sender].errors) == len(peers) - 1
    assert finals == honest_finals(name, market_x)


def test_bilateral_refuses_a_broadcast_bid() -> None:
    market = with_x(Market({}, {}, 1.0))
    market.envelopes["s"] = Envelope("s", 2.0, 0.0)
    bad = Bid(X, INTERVAL, 1, 0.5, 0.2)
    _, peers, _ = run_injected("bilateral", market, X, bad)
    assert [r.reason for r in peers["s"].refused] == ["unexpected"]


ENVELOPES = {"a": Envelope("a", 1.0, 2.0)}


@pytest.mark.parametrize("name", PROTOCOLS)
@pytest.mark.parametrize(
    ("order", "error"),
    [
        (Offer("a", INTERVAL, 0, 1.5, 0.1), OutsideEnvelope),
        (Bid("a", INTERVAL, 0, 2.5, 0.1), OutsideEnvelope),
        (Bid("b", INTERVAL, 0, 0.5, 0.1), UnexpectedMessage),  # not this peer's order
        (Bid("a", INTERVAL + 1, 0, 0.5, 0.1), UnexpectedMessage),
        (Bid("a", INTERVAL, 0, math.nan, 0.1), InvalidOrder),
        (Bid("a", INTERVAL, 0, 0.5, math.inf), InvalidOrder),
    ],
)
def test_invalid_own_order_raises(name: str, order: Bid | Offer, error: type) -> None:
    peer = make_protocol(name, "a", seq_counter())
    with pytest.raises(error, match=r"quantity_kwh|limit_price|sender|interval"):
        peer.start(INTERVAL, order, ENVELOPES, 1.0)


@pytest.mark.parametrize("name", PROTOCOLS)
def test_own_order_without_envelope_raises(name: str) -> None:
    peer = make_protocol(name, "z", seq_counter())
    with pytest.raises(UnknownSender, match="'z'"):
        peer.start(INTERVAL, Bid("z", INTERVAL, 0, 0.5, 0.1), ENVELOPES, 1.0)


@pytest.mark.parametrize("duration_h", [0.0, -1.0, math.nan])
def test_bad_duration_raises(duration_h: float) -> None:
    peer = make_protocol("auction", "a", seq_counter())
    with pytest.raises(InvalidOrder, match="duration_h"):
        peer.start(INTERVAL, None, ENVELOPES, duration_h)


@pytest.mark.parametrize("kwargs", [{"name": "central"}, {"name": "bilateral", "rounds": 0}])
def test_bad_settings_raise(kwargs: dict) -> None:
    with pytest.raises(InvalidSetting, match=r"protocol|rounds"):
        make_protocol(sender="a", next_seq=seq_counter(), **{"rounds": 8, **kwargs})


@given(market=markets(max_peers=6).map(with_x))
def test_auction_refuses_a_bid_outside_the_import_envelope(market: Market) -> None:
    bad = Bid(X, INTERVAL, 1, limit_kwh(market) + 0.5, 0.3)
    _, peers, finals = run_injected("auction", market, X, bad)
    assert all([r.reason for r in peers[p].refused] == ["outside_envelope"] for p in market.orders)
    assert finals == honest_finals("auction", market)
