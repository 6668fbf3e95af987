"""A prosumer's bill and P2P totals, for one prosumer (numbers) or a batch (arrays: any shape,
prosumers or worlds x prosumers).

Money is a cost to the prosumer when positive (``docs/market.md``). The prosumer owns its
bill: only it knows its final P2P trades (a trade voided after its ``Schedule`` is billed at
retail); the DSO owns the Var amount, sent in ``Settlement`` (it alone has the settled power
flow). Each figure has one formula, here:

- ``retail_eur``: the residual ``r = p_kw * h - p2p_net_kwh`` exported at the feed-in
  tariff (``-r * feed_in`` if ``r > 0``) or imported at retail (``-r * retail``);
- ``network_eur``: the P2P network charge, :data:`NETWORK_CHARGE_BUYER_SHARE` of it paid by
  the buyer and the rest by the seller of every traded kWh, collected by the DSO;
- ``storage_eur``: in the run's last interval only, minus the change of stored energy since
  the first interval valued at :func:`storage_price_eur_per_kwh`;
- ``bill_eur``: ``p2p_eur + retail_eur + var_eur + network_eur + storage_eur``.

A prosumer's final trades are summed by :func:`p2p_totals` (``p2p_eur`` is paid minus
received); they also give the last P2P price it observes (:func:`last_price_eur_per_kwh`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic

import numpy as np

from agents.arrays import F, Floats, namespace
from agents.policy import Observation

#: The figures of a bill, in the order of the ``prosumers`` table; they sum to ``bill_eur``.
BILL_PARTS = ("p2p_eur", "retail_eur", "var_eur", "network_eur", "storage_eur")
#: Share of the P2P network charge paid by the buyer (the seller pays the rest).
NETWORK_CHARGE_BUYER_SHARE = 0.5


@dataclass(frozen=True)
class Bill:
    """The figures of a bill (EUR, cost positive), one per element."""

    p2p_eur: Floats
    retail_eur: Floats
    var_eur: Floats
    network_eur: Floats
    storage_eur: Floats

    @property
    def bill_eur(self) -> Floats:
        """The total bill."""
        return self.p2p_eur + self.retail_eur + self.var_eur + self.network_eur + self.storage_eur


def retail_eur(
    p_kw: Floats,
    p2p_net_kwh: Floats,
    retail_eur_per_kwh: Floats,
    feed_in_eur_per_kwh: Floats,
    duration_h: float,
) -> Floats:
    """Retail amount of the residual energy (net injection minus net P2P sale)."""
    xp = namespace(p_kw, p2p_net_kwh, retail_eur_per_kwh, feed_in_eur_per_kwh)
    residual_kwh = p_kw * duration_h - p2p_net_kwh
    tariff = xp.where(residual_kwh > 0, feed_in_eur_per_kwh, retail_eur_per_kwh)
    return -residual_kwh * tariff


def network_charge_eur(
    p2p_bought_kwh: Floats, p2p_sold_kwh: Floats, charge_eur_per_kwh: float
) -> Floats:
    """Each party's share of the P2P network charge on its traded energy."""
    buyer = NETWORK_CHARGE_BUYER_SHARE * p2p_bought_kwh
    seller = (1.0 - NETWORK_CHARGE_BUYER_SHARE) * p2p_sold_kwh
    return charge_eur_per_kwh * (buyer + seller)


def storage_price_eur_per_kwh(efficiency: Floats, retail_eur_per_kwh: Floats) -> np.ndarray:
    """Value of one stored kWh: its replacement cost, the run's cheapest retail tariff over the
    one-way efficiency.

    Charging stores ``efficiency`` kWh per kWh bought at the bus
    (:func:`agents.battery.next_soc_kwh`), so a stored kWh bought at the cheapest tariff costs
    ``min retail / efficiency``: charging at that tariff at the end of a run books no profit
    (``docs/market.md`` gives the reasoning).
    ``retail_eur_per_kwh``: the run's tariffs on the last axis.
    """
    min_retail = np.min(np.asarray(retail_eur_per_kwh, dtype=float), axis=-1)
    return min_retail / np.asarray(efficiency, dtype=float)


def storage_eur(soc_start_kwh: Floats, soc_end_kwh: Floats, price_eur_per_kwh: Floats) -> Floats:
    """Cost of the stored energy used up over the run (negative when the store grew)."""
    return (soc_start_kwh - soc_end_kwh) * price_eur_per_kwh


def final_storage_eur(
    last: bool, soc_start_kwh: Floats, soc_end_kwh: Floats, price_eur_per_kwh: Floats
) -> Floats:
    """The storage figure of a bill: :func:`storage_eur` in the run's ``last`` interval, else 0
    (zeros of ``soc_end_kwh``'s shape)."""
    if last:
        return storage_eur(soc_start_kwh, soc_end_kwh, price_eur_per_kwh)
    return np.zeros(soc_end_kwh.shape) if isinstance(soc_end_kwh, np.ndarray) else 0.0


@dataclass(frozen=True)
class P2PTotals(Generic[F]):
    """A prosumer's final P2P trades of an interval, summed (kWh, EUR)."""

    bought_kwh: F
    sold_kwh: F
    paid_eur: F  # as the buyer
    received_eur: F  # as the seller

    @property
    def p2p_eur(self) -> F:
        """The P2P figure of the bill (cost positive)."""
        return self.paid_eur - self.received_eur

    @property
    def net_sold_kwh(self) -> F:
        """Energy sold minus energy bought."""
        return self.sold_kwh - self.bought_kwh

    def at(self, index: int | tuple[int, ...]) -> P2PTotals[float]:
        """The totals of party ``index`` of a batch (numbers)."""
        fields: tuple[Any, ...] = (self.bought_kwh, self.sold_kwh, self.paid_eur, self.received_eur)
        return P2PTotals(*(float(value[index]) for value in fields))


#: Party indices of trades: an integer array, or a list for one prosumer.
Ints = Sequence[int] | np.ndarray
#: The totals of an interval without trades.
NO_TRADES: P2PTotals[float] = P2PTotals(0.0, 0.0, 0.0, 0.0)


def p2p_totals(
    buyer: Ints,
    seller: Ints,
    quantity_kwh: Sequence[float] | np.ndarray,
    price_eur_per_kwh: Sequence[float] | np.ndarray,
    shape: tuple[int, ...],
) -> P2PTotals:
    """Every party's totals of the trades ``k`` (``buyer[k]`` pays ``seller[k]`` the amount
    ``quantity_kwh[k] * price_eur_per_kwh[k]``), summed in trade order; parties are the flat
    indices of ``shape``. Arrays (a batch: fields of ``shape``) or lists (one prosumer's few
    trades, ``shape`` one axis: fields are lists)."""
    xp = namespace(quantity_kwh)
    amount = xp.multiply(quantity_kwh, price_eur_per_kwh)
    size = math.prod(shape)

    def total(party: Ints, values: Any) -> Any:
        sums = xp.bincount(party, values, minlength=size)
        return sums.reshape(shape) if isinstance(sums, np.ndarray) else sums

    return P2PTotals(
        total(buyer, quantity_kwh),
        total(seller, quantity_kwh),
        total(buyer, amount),
        total(seller, amount),
    )


def initial_price_eur_per_kwh(retail_eur_per_kwh: Floats, feed_in_eur_per_kwh: Floats) -> Floats:
    """The last P2P price a prosumer observes before its first trade: the mid tariff."""
    return (retail_eur_per_kwh + feed_in_eur_per_kwh) / 2


def last_price_eur_per_kwh(trades: P2PTotals, previous_eur_per_kwh: Floats) -> Floats:
    """The last P2P price a prosumer observes: the volume-weighted mean price of its trades
    of the interval, ``previous_eur_per_kwh`` where it traded nothing."""
    volume_kwh = trades.bought_kwh + trades.sold_kwh
    xp = namespace(volume_kwh, previous_eur_per_kwh)
    traded = volume_kwh > 0
    amount_eur = trades.paid_eur + trades.received_eur
    return xp.where(traded, amount_eur / xp.where(traded, volume_kwh, 1.0), previous_eur_per_kwh)


def settle_bill(
    p_kw: Floats,
    trades: P2PTotals,
    var_eur: Floats,
    obs: Observation,
    network_charge_eur_per_kwh: float,
    storage_value_eur: Floats,
    duration_h: float,
) -> Bill:
    """Every figure of the bill of net injection ``p_kw`` at the tariffs of ``obs``
    (``storage_value_eur``: :func:`final_storage_eur`)."""
    return Bill(
        p2p_eur=trades.p2p_eur,
        retail_eur=retail_eur(
            p_kw,
            trades.net_sold_kwh,
            obs.retail_eur_per_kwh,
            obs.feed_in_eur_per_kwh,
            duration_h,
        ),
        var_eur=var_eur,
        network_eur=network_charge_eur(
            trades.bought_kwh, trades.sold_kwh, network_charge_eur_per_kwh
        ),
        storage_eur=storage_value_eur,
    )
