"""Order formation: a plan's net position and an action's trade and price components to a
P2P order, for one prosumer (numbers) or a batch (arrays: prosumers, or worlds x prosumers).

Rules (``docs/market.md``):

- The side is where the projected net position ends: a net injection sells, a net
  withdrawal buys. The quantity is the share ``(trade + 1) / 2`` of that position (capped by
  the envelope) over the interval; an order below :data:`MIN_ORDER_KWH` is not sent.
- The price component is read relative to that side: ``markup = (price + 1) / 2`` is the
  share of the spread the prosumer asks for itself. The spread runs from the seller's floor
  ``feed_in + seller share of the network charge`` to the buyer's cap ``retail - buyer share``
  (:mod:`agents.settlement`); a seller asks ``floor + markup * spread``, a buyer bids
  ``cap - markup * spread``. ``price = -1`` is the truthful order on either side (its outside
  option net of its network charge), ``+1`` asks for the whole spread. Where the charge
  exceeds the tariff spread, truthful orders do not cross.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from agents.arrays import Floats, namespace
from agents.policy import Action, Observation
from agents.settlement import NETWORK_CHARGE_BUYER_SHARE

#: Orders smaller than this are not sent (keeps float leftovers out of the book), kWh.
MIN_ORDER_KWH = 0.01

#: Side codes of :class:`Orders`.
SIDE_NONE, SIDE_BUY, SIDE_SELL = 0, 1, 2
Side = Literal["buy", "sell", "none"]
SIDE_NAMES: tuple[Side, ...] = ("none", "buy", "sell")


@dataclass(frozen=True)
class Orders:
    """P2P orders, one per element (side code, kWh >= 0, EUR/kWh)."""

    side: Floats  # SIDE_NONE, SIDE_BUY or SIDE_SELL
    quantity_kwh: Floats  # 0 where side is SIDE_NONE
    limit_price_eur_per_kwh: Floats


def form_orders(
    p_kw: Floats,
    action: Action,
    obs: Observation,
    duration_h: float,
    network_charge_eur_per_kwh: float = 0.0,
) -> Orders:
    """The orders of projected net injections ``p_kw`` with ``action``'s trade and price
    components, inside the envelope and at the tariffs of ``obs`` (see the module docstring)."""
    export_kw, import_kw = obs.export_kw, obs.import_kw
    retail, feed_in = obs.retail_eur_per_kwh, obs.feed_in_eur_per_kwh
    xp = namespace(p_kw, export_kw, import_kw, action.trade, action.price, retail)
    p = xp.asarray(p_kw, dtype=float)
    share = (xp.asarray(action.trade, dtype=float) + 1.0) / 2.0
    selling = p > 0
    position_kw = xp.where(selling, xp.minimum(p, export_kw), xp.minimum(-p, import_kw))
    quantity = share * position_kw * duration_h  # 0 at p = 0 (limits are >= 0)
    sent = quantity >= MIN_ORDER_KWH
    side = xp.where(sent, xp.where(selling, SIDE_SELL, SIDE_BUY), SIDE_NONE)
    quantity = xp.where(sent, quantity, 0.0)
    cap = xp.maximum(0.0, retail - NETWORK_CHARGE_BUYER_SHARE * network_charge_eur_per_kwh)
    floor = feed_in + (1.0 - NETWORK_CHARGE_BUYER_SHARE) * network_charge_eur_per_kwh
    spread = xp.maximum(0.0, cap - floor)
    markup = (xp.asarray(action.price, dtype=float) + 1.0) / 2.0 * spread
    limit = xp.where(side == SIDE_BUY, cap - markup, floor + markup)
    return Orders(side, quantity, limit)
