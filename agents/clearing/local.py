"""Deterministic in-memory delivery of one clearing interval among local peers.

The reference semantics of the deliver-all-then-next-phase backend: messages are delivered
first-in first-out (a broadcast becomes one delivery per other peer, in id order), replies
join the queue, and a clock tick is given to every peer (in id order) only once the queue
is empty. Used by the tests: ``drop`` loses chosen deliveries, ``pick`` reorders them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping

from agents.clearing.protocol import ClearedTrade, ClearingProtocol
from messaging.messages import Bid, Envelope, Message, Offer, Outgoing

#: ``drop(src, dst, msg)`` returns True to lose that delivery.
DropRule = Callable[[str, str, Message], bool]
#: ``pick(n)`` returns which of the ``n`` queued deliveries goes next (default: the oldest).
PickRule = Callable[[int], int]


class LocalRouter:
    """Runs peers' :class:`ClearingProtocol` instances against each other in one process.

    ``sent`` records every ``(src, to, msg)`` handed to the router (``to=None``: broadcast)
    and ``undeliverable`` the directed messages whose recipient is not a local peer.
    """

    def __init__(
        self,
        peers: Mapping[str, ClearingProtocol],
        drop: DropRule | None = None,
        pick: PickRule | None = None,
    ) -> None:
        self.peers = dict(sorted(peers.items()))
        self.drop = drop
        self.pick = pick
        self.sent: list[tuple[str, str | None, Message]] = []
        self.undeliverable: list[tuple[str, str, Message]] = []
        self._queue: deque[tuple[str, str, Message]] = deque()

    def post(self, src: str, outgoing: Iterable[Outgoing]) -> None:
        """Queue what ``src`` (a peer or any outside sender) sends, one delivery per recipient."""
        for to, msg in outgoing:
            self.sent.append((src, to, msg))
            targets = [p for p in self.peers if p != src] if to is None else [to]
            self._queue.extend((src, dst, msg) for dst in targets)

    def flush(self) -> None:
        """Deliver until nothing is queued (replies included)."""
        queue = self._queue
        while queue:
            skip = self.pick(len(queue)) if self.pick else 0
            queue.rotate(-skip)
            src, dst, msg = queue.popleft()
            queue.rotate(skip)
            if dst not in self.peers:
                self.undeliverable.append((src, dst, msg))
            elif self.drop is None or not self.drop(src, dst, msg):
                self.post(dst, self.peers[dst].on_message(msg))

    def start(
        self,
        interval: int,
        orders: Mapping[str, Bid | Offer],
        envelopes: Mapping[str, Envelope],
        duration_h: float,
    ) -> None:
        """Start every peer with its own order (none if absent) and deliver the first messages."""
        for peer_id, peer in self.peers.items():
            self.post(peer_id, peer.start(interval, orders.get(peer_id), envelopes, duration_h))
        self.flush()

    def tick(self, phase: str, round: int = 0) -> None:
        """Give every peer the clock tick, then deliver what it sends."""
        for peer_id, peer in self.peers.items():
            self.post(peer_id, peer.on_phase(phase, round))
        self.flush()

    def finish(self) -> dict[str, list[ClearedTrade]]:
        """Give the remaining clock ticks of the interval; return each peer's final trades."""
        first = next(iter(self.peers.values()))
        for phase, round in first.ticks():
            self.tick(phase, round)
        return {peer_id: peer.final_trades() for peer_id, peer in self.peers.items()}

    def run(
        self,
        interval: int,
        orders: Mapping[str, Bid | Offer],
        envelopes: Mapping[str, Envelope],
        duration_h: float,
    ) -> dict[str, list[ClearedTrade]]:
        """One whole interval: :meth:`start`, every tick, and each peer's final trades."""
        self.start(interval, orders, envelopes, duration_h)
        return self.finish()
