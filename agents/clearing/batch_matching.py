"""The replicated double auction's matching over many worlds at once (numpy).

:func:`match_batch` takes already-formed orders of ``B`` worlds x ``N`` prosumers (at most
one order per prosumer and world) and gives, world by world, exactly the trades of
:func:`agents.clearing.matching.match_double_auction` on that world's book: the same pairs
in the same order, the same float quantities and the same uniform price. Both sides are
sorted in one call each; the walk then advances every world by one match per step.

Exact residuals without integers: the scalar matcher works in exact integer units and
rounds each matched quantity toward zero. Here an order's residual (its quantity minus the
counterparts it already absorbed) is an unevaluated sum ``hi + lo`` of two floats with
``hi = fl(hi + lo)``, updated by error-free transformations (TwoSum). One side of every
step is a fresh order (a plain float), so each comparison and subtraction is exact while a
residual spans at most about 106 bits. A world where a subtraction would not be exact
(quantities some 1e16 apart) is handed to the scalar matcher, so the result is identical in
every case; :attr:`BatchMatches.n_scalar_worlds` counts them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from agents.clearing.errors import DuplicateMessage, InvalidOrder
from agents.clearing.matching import Match, Order, match_double_auction


@dataclass(frozen=True)
class BatchMatches:
    """Trades of ``B`` worlds, world by world in the scalar matcher's order.

    Prosumers are positions ``0..N-1`` of the order arrays. ``price_eur_per_kwh`` is each
    world's uniform price (the scalar matcher's midpoint; 0.0 where nothing traded).
    """

    world: np.ndarray  # (T,) int64, non-decreasing
    buyer: np.ndarray  # (T,) int64 prosumer positions
    seller: np.ndarray  # (T,) int64 prosumer positions
    quantity_kwh: np.ndarray  # (T,) float64
    price_eur_per_kwh: np.ndarray  # (B,) float64
    n_scalar_worlds: int  # worlds matched by the scalar matcher (residuals too wide)

    def matches(self, world: int, senders: Sequence[str]) -> list[Match]:
        """One world's trades as the scalar matcher's :class:`Match` list."""
        price = float(self.price_eur_per_kwh[world])
        return [
            Match(
                senders[self.buyer[r]], senders[self.seller[r]], float(self.quantity_kwh[r]), price
            )
            for r in np.flatnonzero(self.world == world)
        ]


def sender_ranks(senders: Sequence[str]) -> np.ndarray:
    """Each sender's position in sorted id order (the matcher's tie-break), ``(N,)``."""
    seen: set[str] = set()
    for sender in senders:
        if sender in seen:
            raise DuplicateMessage(f"sender={sender!r} has more than one order")
        seen.add(sender)
    ranks = np.empty(len(senders), dtype=np.int64)
    ranks[sorted(range(len(senders)), key=senders.__getitem__)] = np.arange(len(senders))
    return ranks


def match_batch(
    is_bid: np.ndarray,
    quantity_kwh: np.ndarray,
    limit_price_eur_per_kwh: np.ndarray,
    senders: Sequence[str],
) -> BatchMatches:
    """Match the orders ``(B, N)`` of every world; a quantity of 0 is no order.

    ``is_bid``: True for a bid, False for an offer. ``senders``: the ``N`` prosumer ids
    (equal limit prices go to the smaller id). Raises :class:`InvalidOrder` naming the world
    and prosumer of a negative or non-finite quantity, or a non-finite price of an order.
    """
    side = np.asarray(is_bid, dtype=bool)
    q = np.asarray(quantity_kwh, dtype=float)
    price = np.asarray(limit_price_eur_per_kwh, dtype=float)
    n = len(senders)
    if not (side.shape == q.shape == price.shape and q.ndim == 2 and q.shape[1] == n):
        raise InvalidOrder(
            f"is_bid {side.shape}, quantity_kwh {q.shape} and limit_price_eur_per_kwh "
            f"{price.shape} must all be (B, {n})"
        )
    _check_values(side, q, price)
    ranks = sender_ranks(senders)
    live = q > 0
    # each side sorted per world (bids by price descending, offers ascending, then by id);
    # a padding column past the last order keeps every pointer a valid index
    bid_order, qb, pb = _sorted_side(live & side, -price, ranks, q, price)
    offer_order, qo, po = _sorted_side(live & ~side, price, ranks, q, price)
    n_bids, n_offers = (live & side).sum(axis=1), (live & ~side).sum(axis=1)
    b = len(q)
    rows = np.arange(b)
    i = np.zeros(b, dtype=np.int64)  # pointer into the sorted bids
    j = np.zeros(b, dtype=np.int64)  # pointer into the sorted offers
    rb_hi, rb_lo = qb[:, 0].copy(), np.zeros(b)  # residual of each world's current bid
    ro_hi, ro_lo = qo[:, 0].copy(), np.zeros(b)  # and of its current offer
    exact = np.ones(b, dtype=bool)
    last_bid, last_ask = np.zeros(b), np.zeros(b)
    steps: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    while True:
        bid_price, offer_price = pb[rows, i], po[rows, j]
        active = exact & (i < n_bids) & (j < n_offers) & (bid_price >= offer_price)
        if not active.any():
            break
        # exact comparison of two normalised residuals: hi first, then lo
        tie = rb_hi == ro_hi
        bid_done = active & ((rb_hi < ro_hi) | (tie & (rb_lo <= ro_lo)))
        offer_done = active & ((ro_hi < rb_hi) | (tie & (ro_lo <= rb_lo)))
        matched = np.where(bid_done, _round_down(rb_hi, rb_lo), _round_down(ro_hi, ro_lo))
        w = np.flatnonzero(active)
        steps.append((w, bid_order[w, i[w]], offer_order[w, j[w]], matched[w]))
        last_bid = np.where(active, bid_price, last_bid)
        last_ask = np.where(active, offer_price, last_ask)
        # the side not used up keeps its residual less the other's: d = bid - offer
        d_hi, d_lo, d_exact = _difference(rb_hi, rb_lo, ro_hi, ro_lo)
        exact &= d_exact | ~(bid_done ^ offer_done)
        i += bid_done
        j += offer_done
        rb_hi = np.where(bid_done, qb[rows, i], np.where(offer_done, d_hi, rb_hi))
        rb_lo = np.where(bid_done, 0.0, np.where(offer_done, d_lo, rb_lo))
        ro_hi = np.where(offer_done, qo[rows, j], np.where(bid_done, -d_hi, ro_hi))
        ro_lo = np.where(offer_done, 0.0, np.where(bid_done, -d_lo, ro_lo))
    return _result(steps, exact, _midpoint(last_ask, last_bid), side, q, price, senders)


def _check_values(side: np.ndarray, q: np.ndarray, price: np.ndarray) -> None:
    """:class:`InvalidOrder` for the first bad quantity, or bad price of an order."""
    for bad, field, values in (
        (~(np.isfinite(q) & (q >= 0)), "quantity_kwh", q),
        (~np.isfinite(price) & (q > 0), "limit_price_eur_per_kwh", price),
    ):
        if bad.any():
            w, k = (int(x) for x in np.argwhere(bad)[0])
            kind = "bid" if side[w, k] else "offer"
            value = float(values[w, k])
            raise InvalidOrder(
                f"{kind} of prosumer {k} in world {w}: {field}={value!r} is not finite"
                + (" >= 0" if field == "quantity_kwh" else "")
            )


def _sorted_side(
    member: np.ndarray, key: np.ndarray, ranks: np.ndarray, q: np.ndarray, price: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per world, the positions, quantities and prices of the ``member`` orders sorted by
    (key, sender rank), the others after them; ``(B, N + 1)`` with a padding column."""
    keyed = np.where(member, key, np.inf)
    order = np.lexsort((np.broadcast_to(ranks, keyed.shape), keyed), axis=-1)
    pad = np.zeros((len(q), 1))
    return (
        np.concatenate([order, pad.astype(order.dtype)], axis=1),
        np.concatenate([np.take_along_axis(q, order, axis=1), pad], axis=1),
        np.concatenate([np.take_along_axis(price, order, axis=1), pad], axis=1),
    )


def _two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``s = fl(a + b)`` and the exact rounding error ``a + b - s`` (Knuth's TwoSum)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _difference(
    a_hi: np.ndarray, a_lo: np.ndarray, b_hi: np.ndarray, b_lo: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(a_hi + a_lo) - (b_hi + b_lo)`` as a normalised pair, and where it is exact.

    Exact when one operand is a plain float (its ``lo`` is 0) and the difference spans at
    most about 106 bits.
    """
    s, e = _two_sum(a_hi, -b_hi)
    u, f = _two_sum(e, a_lo - b_lo)  # one of the lo terms is 0: the difference is exact
    hi, lo = _two_sum(s, u)
    return hi, lo, f == 0.0


def _round_down(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """The largest float not above the positive ``hi + lo`` (normalised)."""
    return np.where(lo < 0, np.nextafter(hi, 0.0), hi)


def _midpoint(ask: np.ndarray, limit: np.ndarray) -> np.ndarray:
    """:func:`agents.clearing.matching.midpoint_price`, elementwise."""
    return np.minimum(np.maximum(ask / 2 + limit / 2, ask), limit)


def _result(
    steps: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    exact: np.ndarray,
    price: np.ndarray,
    side: np.ndarray,
    q: np.ndarray,
    limit: np.ndarray,
    senders: Sequence[str],
) -> BatchMatches:
    """Trades sorted by world (stable: each world keeps its walk order); the worlds where a
    residual was not exact are matched again by the scalar matcher."""
    parts = [np.concatenate(column) for column in zip(*steps, strict=True)] if steps else []
    world, buyer, seller, quantity = parts or [np.zeros(0, dtype=np.int64)] * 3 + [np.zeros(0)]
    keep = exact[world]
    world, buyer, seller, quantity = world[keep], buyer[keep], seller[keep], quantity[keep]
    redo = np.flatnonzero(~exact)
    if len(redo):
        position = {sender: k for k, sender in enumerate(senders)}
        extra: list[tuple[int, int, int, float]] = []
        for w in redo.tolist():
            books: tuple[list[Order], list[Order]] = ([], [])
            for k in np.flatnonzero(q[w] > 0).tolist():
                books[0 if side[w, k] else 1].append(Order(senders[k], q[w, k], limit[w, k]))
            matches = match_double_auction(*books)
            price[w] = matches[0].price_eur_per_kwh if matches else 0.0
            extra += [(w, position[m.buyer], position[m.seller], m.quantity_kwh) for m in matches]
        world = np.concatenate([world, [e[0] for e in extra]]).astype(np.int64)
        buyer = np.concatenate([buyer, [e[1] for e in extra]]).astype(np.int64)
        seller = np.concatenate([seller, [e[2] for e in extra]]).astype(np.int64)
        quantity = np.concatenate([quantity, [e[3] for e in extra]])
    order = np.argsort(world, kind="stable")
    return BatchMatches(
        world[order], buyer[order], seller[order], quantity[order], price, len(redo)
    )
