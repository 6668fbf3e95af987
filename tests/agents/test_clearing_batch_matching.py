"""The batched matcher gives exactly the scalar matcher's trades, world by world."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import agents.clearing.auction as auction
from abm.config import SimConfig
from abm.sim.model import MarketModel
from agents.clearing.batch_matching import match_batch
from agents.clearing.errors import DuplicateMessage, InvalidOrder
from agents.clearing.matching import Order, match_double_auction

PRICES = st.one_of(
    st.sampled_from([0.05, 0.1, 0.2, -0.0, 0.0]),  # a small set makes price ties frequent
    st.floats(min_value=-0.2, max_value=0.6, allow_nan=False),
)
QUANTITIES = st.one_of(
    st.sampled_from([0.0, 0.5, 1.0, 2.0]),  # ties of quantities: both orders used up at once
    st.sampled_from([5e-324, 1e-300, 1e-12, 2.0**-70, 2.0**-140 + 2.0**-192]),  # dust
    st.floats(min_value=0.0, max_value=10.0, allow_nan=False),
)


@st.composite
def batches(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """``B`` worlds of ``N`` prosumers; some worlds all bids or all offers."""
    n = draw(st.integers(min_value=0, max_value=7))
    b = draw(st.integers(min_value=1, max_value=4))
    senders = draw(
        st.lists(st.text("abc", min_size=1, max_size=3), min_size=n, max_size=n, unique=True)
    )
    cells = st.tuples(st.booleans(), QUANTITIES, PRICES)
    rows = []
    for _ in range(b):
        mode = draw(st.sampled_from(["mixed", "mixed", "all-buy", "all-sell"]))
        row = [draw(cells) for _ in range(n)]
        if mode != "mixed":
            row = [(mode == "all-buy", q, p) for _, q, p in row]
        rows.append(row)
    side = np.array([[c[0] for c in r] for r in rows], dtype=bool).reshape(b, n)
    q = np.array([[c[1] for c in r] for r in rows], dtype=float).reshape(b, n)
    price = np.array([[c[2] for c in r] for r in rows], dtype=float).reshape(b, n)
    return side, q, price, senders


def _scalar(side: np.ndarray, q: np.ndarray, price: np.ndarray, senders: list[str], w: int):
    books: tuple[list[Order], list[Order]] = ([], [])
    for k, sender in enumerate(senders):
        if q[w, k] > 0:  # a zero quantity is no order (the auction sends none)
            books[0 if side[w, k] else 1].append(Order(sender, q[w, k], price[w, k]))
    return match_double_auction(*books)


def _assert_identical(side, q, price, senders) -> None:
    result = match_batch(side, q, price, senders)
    assert np.all(np.diff(result.world) >= 0)
    for w in range(len(q)):
        assert result.matches(w, senders) == _scalar(side, q, price, senders, w)


WIDE = (  # a residual wider than two floats: the world goes to the scalar matcher
    np.array([[True, False, False, False]]),
    np.array([[1.0, 2.0**-70, 2.0**-140 + 2.0**-192, 5.0]]),
    np.array([[0.3, 0.1, 0.1, 0.2]]),
    ["b", "s1", "s2", "s3"],
)


@given(batches())
@example(WIDE)
@example((np.zeros((2, 0), bool), np.zeros((2, 0)), np.zeros((2, 0)), []))  # empty books
def test_batch_matches_the_scalar_matcher(batch) -> None:
    _assert_identical(*batch)


def test_a_wide_residual_is_matched_by_the_scalar_matcher() -> None:
    side, q, price, senders = WIDE
    tiled = tuple(np.repeat(a, 3, axis=0) for a in (side, q, price))
    tiled[1][1, 2] = 2.0**-100  # world 1 stays within two floats
    result = match_batch(*tiled, senders)
    assert result.n_scalar_worlds == 2
    _assert_identical(*tiled, senders)


def test_hand_worked_example_and_sender_tie_break() -> None:
    senders = ["b1", "b2", "b3", "s1", "s2", "s3"]
    side = np.array([[True, True, True, False, False, False]])
    q = np.array([[3.0, 2.0, 5.0, 4.0, 4.0, 1.0]])
    price = np.array([[0.30, 0.20, 0.05, 0.10, 0.15, 0.25]])
    result = match_batch(side, q, price, senders)
    assert [(senders[b], senders[s]) for b, s in zip(result.buyer, result.seller, strict=True)] == [
        ("b1", "s1"),
        ("b2", "s1"),
        ("b2", "s2"),
    ]
    assert result.quantity_kwh.tolist() == [3.0, 1.0, 1.0]
    assert result.price_eur_per_kwh[0] == pytest.approx(0.175)
    tie = match_batch(
        np.array([[True, True, False, False]]),
        np.ones((1, 4)),
        np.array([[0.2, 0.2, 0.1, 0.1]]),
        ["b2", "b1", "s2", "s1"],
    )
    assert tie.buyer.tolist() == [1, 0] and tie.seller.tolist() == [3, 2]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("q", -1.0, "bid of prosumer 1 in world 0: quantity_kwh=-1.0 is not finite >= 0"),
        ("q", math.nan, "quantity_kwh=nan"),
        ("price", math.inf, "limit_price_eur_per_kwh=inf is not finite"),
    ],
)
def test_bad_orders_are_refused(field: str, value: float, message: str) -> None:
    side, q, price = np.ones((1, 2), bool), np.ones((1, 2)), np.ones((1, 2))
    {"q": q, "price": price}[field][0, 1] = value
    with pytest.raises(InvalidOrder, match=message.replace("(", r"\(")):
        match_batch(side, q, price, ["a", "b"])


def test_bad_shapes_and_duplicate_senders_are_refused() -> None:
    with pytest.raises(InvalidOrder, match=r"must all be \(B, 3\)"):
        match_batch(np.ones((1, 2), bool), np.ones((1, 2)), np.ones((1, 2)), ["a", "b", "c"])
    with pytest.raises(DuplicateMessage, match="'a'"):
        match_batch(np.ones((1, 2), bool), np.ones((1, 2)), np.ones((1, 2)), ["a", "a"])


def test_books_of_simulated_days(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every order book the replicated auction cleared in simulated days (winter and summer),
    matched again as one batch."""
    books: dict[tuple, tuple[list[Order], list[Order]]] = {}

    def recording(bids, offers):
        key = tuple((o.sender, o.quantity_kwh, o.limit_price_eur_per_kwh) for o in [*bids, *offers])
        books[key] = (list(bids), list(offers))
        return match_double_auction(bids, offers)

    monkeypatch.setattr(auction, "match_double_auction", recording)
    for first_day in (2, 38):  # test days 14 (January) and 194 (July)
        model = MarketModel(SimConfig(market="p2p", protocol="auction", first_day=first_day))
        while not model.done:
            model.step()
    senders = sorted({o.sender for bids, offers in books.values() for o in [*bids, *offers]})
    column = {s: k for k, s in enumerate(senders)}
    shape = (len(books), len(senders))
    side, q, price = np.zeros(shape, bool), np.zeros(shape), np.zeros(shape)
    for w, (bids, offers) in enumerate(books.values()):
        for order, is_bid in [*((o, True) for o in bids), *((o, False) for o in offers)]:
            k = column[order.sender]
            side[w, k], q[w, k], price[w, k] = (
                is_bid,
                order.quantity_kwh,
                order.limit_price_eur_per_kwh,
            )
    result = match_batch(side, q, price, senders)
    assert len(result.world) > 0, "the simulated days must trade"
    for w, (bids, offers) in enumerate(books.values()):
        assert result.matches(w, senders) == match_double_auction(bids, offers)
