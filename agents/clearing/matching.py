"""Deterministic double-auction matching (pure: no I/O, no randomness).

Every peer of the replicated auction runs :func:`match_double_auction` on the same set of
valid orders and so computes the same trades. Units: energy in kWh per interval, prices
in EUR/kWh.

Rules
-----
* Offers are sorted by (limit price ascending, sender id ascending), bids by (limit price
  descending, sender id ascending); orders with zero quantity are ignored.
* Both lists are walked together, matching ``min(residual bid, residual offer)`` while the
  bid's limit is at least the offer's limit.
* Pricing: one uniform price for the interval, the midpoint of the last matched bid and
  offer limits (k-double auction with k = 0.5). Every matched bid is at least that bid and
  every matched offer at most that offer, so the price lies between each trade's ask and
  limit.
* Quantities are matched exactly (as integer multiples of the finest binary fraction among
  the orders' floats) and each matched quantity is rounded toward zero to a float, so the
  exact sum of one order's matched kWh never exceeds the order's quantity (no float drift).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

from agents.clearing.errors import DuplicateMessage, InvalidOrder


class OrderLike(Protocol):
    """Anything with a sender, a quantity (kWh) and a limit price (EUR/kWh): a Bid or an Offer."""

    @property
    def sender(self) -> str: ...

    @property
    def quantity_kwh(self) -> float: ...

    @property
    def limit_price_eur_per_kwh(self) -> float: ...


@dataclass(frozen=True)
class Order:
    """A plain order for the pure matcher (bids and offers alike)."""

    sender: str
    quantity_kwh: float
    limit_price_eur_per_kwh: float


@dataclass(frozen=True)
class Match:
    """One matched trade: ``seller`` delivers ``quantity_kwh`` to ``buyer`` at a price."""

    buyer: str
    seller: str
    quantity_kwh: float
    price_eur_per_kwh: float


def trade_id(interval: int, seller: str, buyer: str, index: int) -> str:
    """Deterministic trade id ``interval:index:digest`` of both parties and an index.

    The digest (64-bit BLAKE2b of ``seller``, a newline, ``buyer``) keeps the id short and
    unambiguous: agent ids may contain every character the trade-id alphabet allows, and two
    64-character ids would not fit its 128 characters.
    """
    digest = hashlib.blake2b(f"{seller}\n{buyer}".encode(), digest_size=8).hexdigest()
    return f"{interval}:{index}:{digest}"


def midpoint_price(ask_eur_per_kwh: float, limit_eur_per_kwh: float) -> float:
    """Midpoint of an ask and a (not lower) bid limit, never outside ``[ask, limit]``."""
    mid = ask_eur_per_kwh / 2 + limit_eur_per_kwh / 2
    return min(max(mid, ask_eur_per_kwh), limit_eur_per_kwh)


def round_down_kwh(quantity_kwh: Fraction) -> float:
    """The largest float not above the exact non-negative ``quantity_kwh``."""
    return units_to_kwh(quantity_kwh.numerator, quantity_kwh.denominator)


def units_to_kwh(units: int, denominator: int) -> float:
    """The largest float not above the exact non-negative ``units / denominator`` kWh."""
    value = units / denominator  # correctly rounded: at most one step above
    numerator, value_denominator = value.as_integer_ratio()
    if numerator * denominator > units * value_denominator:
        value = math.nextafter(value, 0.0)
    return value


#: The number types an order field may have (a tuple: ``int | float`` would build a union
#: object on every call, and every peer checks every order).
_REAL = (int, float)


def check_order_values(order: OrderLike, kind: str) -> None:
    """Raise :class:`InvalidOrder` unless quantity is finite and >= 0 and the price is finite."""
    q = order.quantity_kwh
    p = order.limit_price_eur_per_kwh
    if not (isinstance(q, _REAL) and math.isfinite(q) and q >= 0):
        raise InvalidOrder(f"{kind} from {order.sender!r}: quantity_kwh={q!r} is not finite >= 0")
    if not (isinstance(p, _REAL) and math.isfinite(p)):
        raise InvalidOrder(
            f"{kind} from {order.sender!r}: limit_price_eur_per_kwh={p!r} is not finite"
        )


def _live_sorted(orders: Iterable[OrderLike], kind: str, descending: bool) -> list[OrderLike]:
    live = []
    for order in orders:
        check_order_values(order, kind)
        if order.quantity_kwh > 0:
            live.append(order)
    sign = -1.0 if descending else 1.0
    return sorted(live, key=lambda o: (sign * o.limit_price_eur_per_kwh, o.sender))


def _check_unique_senders(bids: Sequence[OrderLike], offers: Sequence[OrderLike]) -> None:
    seen: set[str] = set()
    for order in [*bids, *offers]:
        if order.sender in seen:
            raise DuplicateMessage(f"sender={order.sender!r} has more than one order")
        seen.add(order.sender)


def match_double_auction(bids: Sequence[OrderLike], offers: Sequence[OrderLike]) -> list[Match]:
    """Match bids against offers with the k = 0.5 uniform-price double auction above.

    Raises :class:`InvalidOrder` for a NaN/infinite/negative field and
    :class:`DuplicateMessage` when a sender has more than one order (bid or offer).
    """
    _check_unique_senders(bids, offers)
    sorted_bids = _live_sorted(bids, "bid", descending=True)
    sorted_offers = _live_sorted(offers, "offer", descending=False)
    # Exact arithmetic in integer units of 1/denominator kWh (floats are dyadic rationals).
    ratios = [o.quantity_kwh.as_integer_ratio() for o in [*sorted_bids, *sorted_offers]]
    denominator = max((d for _, d in ratios), default=1)
    units = [n * (denominator // d) for n, d in ratios]
    bid_units, offer_units = units[: len(sorted_bids)], units[len(sorted_bids) :]
    matched: list[tuple[str, str, int]] = []
    i = j = 0
    last_bid = last_ask = 0.0
    while (
        i < len(sorted_bids)
        and j < len(sorted_offers)
        and sorted_bids[i].limit_price_eur_per_kwh >= sorted_offers[j].limit_price_eur_per_kwh
    ):
        bid, offer = sorted_bids[i], sorted_offers[j]
        quantity = min(bid_units[i], offer_units[j])
        matched.append((bid.sender, offer.sender, quantity))
        last_bid, last_ask = bid.limit_price_eur_per_kwh, offer.limit_price_eur_per_kwh
        bid_units[i] -= quantity
        offer_units[j] -= quantity
        i += bid_units[i] == 0
        j += offer_units[j] == 0
    price = midpoint_price(last_ask, last_bid)
    return [Match(b, s, units_to_kwh(q, denominator), price) for b, s, q in matched]
