"""Tests of the pure double-auction matcher against independent references."""

from __future__ import annotations

import math
from collections import defaultdict
from fractions import Fraction

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from scipy.optimize import linprog

from agents.clearing.errors import DuplicateMessage, InvalidOrder
from agents.clearing.matching import (
    Order,
    match_double_auction,
    midpoint_price,
    trade_id,
    units_to_kwh,
)

PRICES = st.one_of(
    st.sampled_from([0.05, 0.1, 0.2, 0.3]),  # a small set makes price ties frequent
    st.floats(min_value=-0.2, max_value=0.6, allow_nan=False),
)
QUANTITIES = st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=10.0, allow_nan=False))


@st.composite
def order_books(draw: st.DrawFn, max_peers: int = 8) -> tuple[list[Order], list[Order]]:
    """Random disjoint bid and offer sets (one order per sender)."""
    n = draw(st.integers(min_value=0, max_value=max_peers))
    bids, offers = [], []
    for k in range(n):
        order = Order(f"p{k}", draw(QUANTITIES), draw(PRICES))
        (bids if draw(st.booleans()) else offers).append(order)
    return bids, offers


def _matched_by(matches, attr: str) -> dict[str, Fraction]:
    totals: dict[str, Fraction] = defaultdict(Fraction)
    for m in matches:
        totals[getattr(m, attr)] += Fraction(m.quantity_kwh)
    return totals


def _competitive_volume(bids: list[Order], offers: list[Order]) -> Fraction:
    """Brute force: max over candidate prices p of min(demand at p, supply at p)."""
    best = Fraction(0)
    for p in {o.limit_price_eur_per_kwh for o in [*bids, *offers]}:
        demand = sum(Fraction(b.quantity_kwh) for b in bids if b.limit_price_eur_per_kwh >= p)
        supply = sum(Fraction(o.quantity_kwh) for o in offers if o.limit_price_eur_per_kwh <= p)
        best = max(best, min(demand, supply))
    return best


def _max_welfare(bids: list[Order], offers: list[Order]) -> float:
    """Reference welfare optimum by linear programming over each order's traded quantity."""
    if not bids or not offers:
        return 0.0
    c = [-b.limit_price_eur_per_kwh for b in bids] + [o.limit_price_eur_per_kwh for o in offers]
    balance = [[1.0] * len(bids) + [-1.0] * len(offers)]
    bounds = [(0.0, o.quantity_kwh) for o in [*bids, *offers]]
    result = linprog(c, A_eq=balance, b_eq=[0.0], bounds=bounds, method="highs")
    return -result.fun


def test_hand_worked_example() -> None:
    bids = [Order("b1", 3.0, 0.30), Order("b2", 2.0, 0.20), Order("b3", 5.0, 0.05)]
    offers = [Order("s1", 4.0, 0.10), Order("s2", 4.0, 0.15), Order("s3", 1.0, 0.25)]
    matches = match_double_auction(bids, offers)
    # b1 takes 3 from s1, b2 takes 1 from s1 and 1 from s2; b2 (0.20) >= s2 (0.15) is the last.
    assert [(m.buyer, m.seller, m.quantity_kwh) for m in matches] == [
        ("b1", "s1", 3.0),
        ("b2", "s1", 1.0),
        ("b2", "s2", 1.0),
    ]
    assert [m.price_eur_per_kwh for m in matches] == pytest.approx([0.175] * 3)


def test_ties_broken_by_sender_id() -> None:
    bids = [Order("b2", 1.0, 0.2), Order("b1", 1.0, 0.2)]
    offers = [Order("s2", 1.0, 0.1), Order("s1", 1.0, 0.1)]
    matches = match_double_auction(bids, offers)
    assert [(m.buyer, m.seller) for m in matches] == [("b1", "s1"), ("b2", "s2")]


def test_no_trade_when_bids_below_asks() -> None:
    assert match_double_auction([Order("b", 1.0, 0.1)], [Order("s", 1.0, 0.2)]) == []


@pytest.mark.parametrize("field", ["quantity_kwh", "limit_price_eur_per_kwh"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -1.0])
def test_bad_values_raise_invalid_order(field: str, value: float) -> None:
    good = {"sender": "b", "quantity_kwh": 1.0, "limit_price_eur_per_kwh": 0.2}
    bad = Order(**{**good, field: value})
    if field == "limit_price_eur_per_kwh" and value == -1.0:
        assert match_double_auction([bad], [Order("s", 1.0, -2.0)])  # negative prices are fine
        return
    with pytest.raises(InvalidOrder, match=field):
        match_double_auction([bad], [Order("s", 1.0, 0.1)])


def test_two_orders_from_one_sender_raise() -> None:
    with pytest.raises(DuplicateMessage, match="'p1'"):
        match_double_auction([Order("p1", 1.0, 0.2)], [Order("p1", 1.0, 0.1)])


def test_trade_id_is_deterministic_and_distinct() -> None:
    assert trade_id(3, "s", "b", 0) == trade_id(3, "s", "b", 0)
    assert len({trade_id(3, "s", "b", 0), trade_id(3, "b", "s", 0), trade_id(4, "s", "b", 0)}) == 3


@given(st.floats(-1e308, 1e308), st.floats(-1e308, 1e308))
def test_midpoint_stays_between_ask_and_limit(a: float, b: float) -> None:
    ask, limit = min(a, b), max(a, b)
    assert ask <= midpoint_price(ask, limit) <= limit


@given(order_books())
def test_quantities_never_exceed_orders_exactly(book: tuple[list[Order], list[Order]]) -> None:
    bids, offers = book
    matches = match_double_auction(bids, offers)
    for side, orders in (("buyer", bids), ("seller", offers)):
        totals = _matched_by(matches, side)
        for order in orders:
            assert totals.get(order.sender, Fraction(0)) <= Fraction(order.quantity_kwh)
    assert all(m.quantity_kwh > 0 for m in matches)


@given(order_books())
def test_price_between_ask_and_limit_and_uniform(book: tuple[list[Order], list[Order]]) -> None:
    bids, offers = book
    limit = {o.sender: o.limit_price_eur_per_kwh for o in [*bids, *offers]}
    matches = match_double_auction(bids, offers)
    for m in matches:
        assert limit[m.seller] <= m.price_eur_per_kwh <= limit[m.buyer]
    assert len({m.price_eur_per_kwh for m in matches}) <= 1


@given(order_books(), st.randoms(use_true_random=False))
def test_deterministic_under_input_order(book, rnd) -> None:
    bids, offers = book
    shuffled_bids, shuffled_offers = list(bids), list(offers)
    rnd.shuffle(shuffled_bids)
    rnd.shuffle(shuffled_offers)
    assert match_double_auction(bids, offers) == match_double_auction(
        shuffled_bids, shuffled_offers
    )


@given(order_books(max_peers=6))
def test_volume_is_competitive_equilibrium_volume(book) -> None:
    bids, offers = book
    matches = match_double_auction(bids, offers)
    traded = sum(Fraction(m.quantity_kwh) for m in matches)
    # Rounding each matched quantity toward zero loses at most one ulp per match.
    assert float(traded) == pytest.approx(float(_competitive_volume(bids, offers)), abs=1e-12)


@given(order_books(max_peers=6))
@example(  # a spread of 6e-8 EUR/kWh: below the LP solver's tolerance, found by hypothesis in CI
    book=(
        [Order("p3", 2.0, 0.0)],
        [Order("p0", 3.0, -5.960464477539063e-08), Order("p1", 0.0, 0.05)],
    )
)
def test_welfare_is_maximal(book) -> None:
    bids, offers = book
    limit = {o.sender: o.limit_price_eur_per_kwh for o in [*bids, *offers]}
    matches = match_double_auction(bids, offers)
    welfare = sum((limit[m.buyer] - limit[m.seller]) * m.quantity_kwh for m in matches)
    # HiGHS works to ~1e-7 optimality tolerance: objective differences below that are noise.
    assert welfare == pytest.approx(_max_welfare(bids, offers), rel=1e-9, abs=1e-6)


@given(st.integers(min_value=0, max_value=10**30), st.integers(min_value=1, max_value=10**30))
def test_units_to_kwh_rounds_toward_zero(units: int, denominator: int) -> None:
    value = units_to_kwh(units, denominator)
    exact = Fraction(units, denominator)
    assert Fraction(value) <= exact < Fraction(math.nextafter(value, math.inf))
