"""Decentralised P2P market clearing: two protocols behind one interface, no auctioneer.

* ``"auction"`` — :class:`ReplicatedAuction`: every peer receives all orders, runs the same
  deterministic double auction and confirms its own trades bilaterally.
* ``"bilateral"`` — :class:`BilateralClearing`: sellers publish offers, buyers send
  price-ordered requests, sellers accept or refuse, for a bounded number of rounds.

Both implement :class:`ClearingProtocol`; build one with :func:`make_protocol`. The message
sequence, pricing rule, tie-breaks and refusal rules are in ``docs/protocol.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from agents.clearing.auction import AUCTION_SILENT_TICKS, AUCTION_TICKS, ReplicatedAuction
from agents.clearing.bilateral import (
    DEFAULT_ROUNDS,
    MAX_ROUNDS,
    BilateralClearing,
    bilateral_ticks,
)
from agents.clearing.errors import InvalidSetting
from agents.clearing.local import LocalRouter
from agents.clearing.matching import Match, Order, match_double_auction, trade_id
from agents.clearing.protocol import ClearedTrade, ClearingProtocol, Refusal


class ProtocolName(StrEnum):
    """The clearing protocols :func:`make_protocol` builds."""

    AUCTION = "auction"
    BILATERAL = "bilateral"


def make_protocol(
    name: ProtocolName,
    sender: str,
    next_seq: Callable[[], int],
    rounds: int = DEFAULT_ROUNDS,
    *,
    validate_inputs: bool = True,
) -> ClearingProtocol:
    """A clearing protocol instance for peer ``sender`` (``rounds`` only for bilateral).

    ``validate_inputs``: see :class:`agents.clearing.protocol.ClearingPeer`.
    """
    if name == "auction":
        return ReplicatedAuction(sender, next_seq, validate_inputs=validate_inputs)
    if name == "bilateral":
        return BilateralClearing(sender, next_seq, rounds, validate_inputs=validate_inputs)
    raise InvalidSetting(f"protocol={name!r} is not one of {[str(p) for p in ProtocolName]}")


def clearing_ticks(name: ProtocolName, rounds: int = DEFAULT_ROUNDS) -> tuple[tuple[str, int], ...]:
    """The ``(phase, round)`` clock ticks of protocol ``name`` before the ``schedule`` tick.

    The market clock (Mesa model or DSO process) opens these between ``orders`` and
    ``schedule``; the same ``rounds`` must be given to :func:`make_protocol`.
    """
    if name == "auction":
        ticks = AUCTION_TICKS
    elif name == "bilateral":
        ticks = bilateral_ticks(rounds)
    else:
        raise InvalidSetting(f"protocol={name!r} is not one of {[str(p) for p in ProtocolName]}")
    return tuple(tick for tick in ticks if tick[0] != "schedule")


def silent_ticks(name: ProtocolName) -> frozenset[tuple[str, int]]:
    """The ticks of protocol ``name`` at which a peer sends nothing (see ``docs/protocol.md``).

    A multi-process clock opens the next tick without waiting for these: the relay delivers
    a silent tick's ``Phase`` before the next one, and the peers handle them in order.
    """
    return AUCTION_SILENT_TICKS if name == "auction" else frozenset()


__all__ = [
    "AUCTION_SILENT_TICKS",
    "AUCTION_TICKS",
    "DEFAULT_ROUNDS",
    "MAX_ROUNDS",
    "BilateralClearing",
    "ClearedTrade",
    "ClearingProtocol",
    "LocalRouter",
    "Match",
    "Order",
    "ProtocolName",
    "Refusal",
    "ReplicatedAuction",
    "clearing_ticks",
    "make_protocol",
    "match_double_auction",
    "silent_ticks",
    "trade_id",
]
