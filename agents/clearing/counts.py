"""Messages one interval of clearing costs, as a function of the market's size.

``N`` peers, of which ``n_orders`` send a non-zero order (``n_offers`` sellers, the rest
buyers), ``T`` final trades. Refusals (``Error`` replies) and the DSO's clock ticks are not
counted. A broadcast reaches ``N - 1`` peers.

* replicated auction: ``n_orders`` broadcasts (every order) and ``2 T`` directed confirms
  (one per side of each trade);
* bilateral: ``n_offers`` broadcasts and ``2 Q`` directed messages, ``Q`` requests each
  answered once; ``T <= Q <= n_bids * min(R, n_offers)`` for ``R`` rounds.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MessageCount:
    """Messages sent in one interval: broadcasts (to every peer) and directed (to one)."""

    broadcast: int
    directed: int

    def deliveries(self, n_peers: int) -> int:
        """Point-to-point deliveries when a broadcast reaches the other ``n_peers - 1`` peers."""
        return self.broadcast * (n_peers - 1) + self.directed


def auction_messages(n_orders: int, n_trades: int) -> MessageCount:
    """Messages of the replicated auction: every order broadcast, two confirms per trade."""
    return MessageCount(broadcast=n_orders, directed=2 * n_trades)


def bilateral_messages(n_offers: int, n_requests: int) -> MessageCount:
    """Messages of the bilateral protocol: offers broadcast, each request and its answer."""
    return MessageCount(broadcast=n_offers, directed=2 * n_requests)


def bilateral_max_requests(n_bids: int, n_offers: int, rounds: int) -> int:
    """Upper bound on bilateral requests: each buyer asks each seller once, once per round."""
    return n_bids * min(rounds, n_offers)
