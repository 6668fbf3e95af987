"""Decentralised P2P market clearing: protocols behind one interface, no auctioneer.

* ``"auction"`` — :class:`ReplicatedAuction`: every peer receives all orders, runs the same
  deterministic double auction and confirms its own trades bilaterally.
* ``"bilateral"`` — :class:`BilateralClearing`: sellers publish offers, buyers send
  price-ordered requests, sellers accept or refuse, for a bounded number of rounds.

Each is a :class:`ClearingPeer` subclass registered by its ``name`` in :data:`PROTOCOLS`
(a new protocol: one module and one line there, ``docs/extending.md``); build one with
:func:`make_protocol`. The message sequence, pricing rule, tie-breaks and refusal rules are
in ``docs/protocol.md``.
"""

from __future__ import annotations

from collections.abc import Callable

from agents.clearing.auction import AUCTION_SILENT_TICKS, AUCTION_TICKS, ReplicatedAuction
from agents.clearing.bilateral import MAX_ROUNDS, BilateralClearing
from agents.clearing.errors import InvalidSetting
from agents.clearing.local import LocalRouter
from agents.clearing.matching import Match, Order, match_double_auction, trade_id
from agents.clearing.protocol import (
    DEFAULT_ROUNDS,
    ClearedTrade,
    ClearingPeer,
    ClearingProtocol,
    Refusal,
    Tick,
)
from agents.registry import Registry

#: The name of a clearing protocol: a key of :data:`PROTOCOLS`.
ProtocolName = str

#: The clearing protocols by name (``SimConfig.protocol``, ``--protocol``), in this order.
PROTOCOLS: Registry[type[ClearingPeer]] = Registry("protocol", InvalidSetting)
for _protocol in (ReplicatedAuction, BilateralClearing):
    PROTOCOLS[_protocol.name] = _protocol


def make_protocol(
    name: ProtocolName,
    sender: str,
    next_seq: Callable[[], int],
    rounds: int = DEFAULT_ROUNDS,
    *,
    validate_inputs: bool = True,
) -> ClearingProtocol:
    """A clearing protocol instance for peer ``sender`` (``rounds``: for protocols with rounds).

    ``validate_inputs``: see :class:`agents.clearing.protocol.ClearingPeer`.
    """
    return PROTOCOLS[name](sender, next_seq, rounds, validate_inputs=validate_inputs)


def clearing_ticks(name: ProtocolName, rounds: int = DEFAULT_ROUNDS) -> tuple[Tick, ...]:
    """The ``(phase, round)`` clock ticks of protocol ``name`` before the ``schedule`` tick.

    The market clock (Mesa model or DSO process) opens these between ``orders`` and
    ``schedule``; the same ``rounds`` must be given to :func:`make_protocol`.
    """
    return tuple(t for t in PROTOCOLS[name].interval_ticks(rounds) if t[0] != "schedule")


def silent_ticks(name: ProtocolName) -> frozenset[Tick]:
    """The ticks of protocol ``name`` at which a peer sends nothing (see ``docs/protocol.md``).

    A multi-process clock opens the next tick without waiting for these: the relay delivers
    a silent tick's ``Phase`` before the next one, and the peers handle them in order.
    """
    return PROTOCOLS[name].SILENT_TICKS


__all__ = [
    "AUCTION_SILENT_TICKS",
    "AUCTION_TICKS",
    "DEFAULT_ROUNDS",
    "MAX_ROUNDS",
    "PROTOCOLS",
    "BilateralClearing",
    "ClearedTrade",
    "ClearingPeer",
    "ClearingProtocol",
    "LocalRouter",
    "Match",
    "Order",
    "ProtocolName",
    "Refusal",
    "ReplicatedAuction",
    "Tick",
    "clearing_ticks",
    "make_protocol",
    "match_double_auction",
    "silent_ticks",
    "trade_id",
]
