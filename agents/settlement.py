"""A prosumer's bill, array-based (any shape: prosumers, or worlds x prosumers).

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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agents.arrays import Floats, namespace

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
    """Value of one stored kWh: the one-way efficiency times the run's mean retail tariff.

    A stored kWh later delivers ``efficiency`` kWh at the bus, where it replaces a retail
    purchase (``docs/market.md`` gives the reasoning). ``retail_eur_per_kwh``: the run's
    tariffs on the last axis.
    """
    mean_retail = np.mean(np.asarray(retail_eur_per_kwh, dtype=float), axis=-1)
    return np.asarray(efficiency, dtype=float) * mean_retail


def storage_eur(soc_start_kwh: Floats, soc_end_kwh: Floats, price_eur_per_kwh: Floats) -> Floats:
    """Cost of the stored energy used up over the run (negative when the store grew)."""
    return (soc_start_kwh - soc_end_kwh) * price_eur_per_kwh


def settle_bill(
    *,
    p_kw: Floats,
    p2p_bought_kwh: Floats,
    p2p_sold_kwh: Floats,
    p2p_eur: Floats,
    var_eur: Floats,
    retail_eur_per_kwh: Floats,
    feed_in_eur_per_kwh: Floats,
    network_charge_eur_per_kwh: float,
    storage_value_eur: Floats,
    duration_h: float,
) -> Bill:
    """Every figure of the bill (``storage_value_eur``: :func:`storage_eur` or 0)."""
    return Bill(
        p2p_eur=p2p_eur,
        retail_eur=retail_eur(
            p_kw,
            p2p_sold_kwh - p2p_bought_kwh,
            retail_eur_per_kwh,
            feed_in_eur_per_kwh,
            duration_h,
        ),
        var_eur=var_eur,
        network_eur=network_charge_eur(p2p_bought_kwh, p2p_sold_kwh, network_charge_eur_per_kwh),
        storage_eur=storage_value_eur,
    )
