"""Communication-overhead counters: messages, bytes and latency per agent and kind.

Every transport endpoint owns a :class:`Counters`. Updating it is a dict lookup and a few
integer additions, so it stays on by default. Latency is the send-to-receive time taken
from the send stamp in the frame header (``time.time_ns``, so across hosts it is only as
good as their clock synchronisation), kept in a log-linear histogram with 16 buckets per
power of two (quantiles within about 6 %).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: Sub-bucket bits of the latency histogram: 2**4 buckets per power of two of ns.
LATENCY_SUB_BITS = 4
_EXACT_BELOW_NS = 1 << (LATENCY_SUB_BITS + 1)
#: Latency quantiles reported in :meth:`Counters.rows`.
LATENCY_QUANTILES: tuple[float, ...] = (0.5, 0.9, 0.99)
NS_PER_US = 1000.0


def _bucket(latency_ns: int) -> int:
    if latency_ns < _EXACT_BELOW_NS:
        return latency_ns
    shift = latency_ns.bit_length() - (LATENCY_SUB_BITS + 1)
    return (shift << LATENCY_SUB_BITS) + (latency_ns >> shift)


def _bucket_mid_ns(bucket: int) -> float:
    if bucket < _EXACT_BELOW_NS:
        return float(bucket)
    shift = (bucket >> LATENCY_SUB_BITS) - 1
    mantissa = bucket - (shift << LATENCY_SUB_BITS)
    return ((mantissa << shift) + ((mantissa + 1) << shift) - 1) / 2.0


class LatencyHistogram:
    """Log-linear histogram of latencies in ns; negative samples (clock skew) count as 0."""

    __slots__ = ("buckets", "count", "max_ns", "total_ns")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.count = 0
        self.total_ns = 0
        self.max_ns = 0

    def record(self, latency_ns: int) -> None:
        """Add one sample."""
        if latency_ns < 0:
            latency_ns = 0
        bucket = _bucket(latency_ns)
        buckets = self.buckets
        buckets[bucket] = buckets.get(bucket, 0) + 1
        self.count += 1
        self.total_ns += latency_ns
        if latency_ns > self.max_ns:
            self.max_ns = latency_ns

    def merge(self, other: LatencyHistogram) -> None:
        """Add every sample of ``other``."""
        for bucket, n in other.buckets.items():
            self.buckets[bucket] = self.buckets.get(bucket, 0) + n
        self.count += other.count
        self.total_ns += other.total_ns
        self.max_ns = max(self.max_ns, other.max_ns)

    def quantile_ns(self, q: float) -> float | None:
        """The ``q`` quantile (0..1) at bucket resolution, or ``None`` without samples."""
        if self.count == 0:
            return None
        rank = q * self.count
        seen = 0
        for bucket in sorted(self.buckets):
            seen += self.buckets[bucket]
            if seen >= rank:
                return min(_bucket_mid_ns(bucket), float(self.max_ns))
        return float(self.max_ns)

    def mean_ns(self) -> float | None:
        """Mean latency, or ``None`` without samples."""
        return self.total_ns / self.count if self.count else None


class KindStats:
    """Counts of one message kind at one agent."""

    __slots__ = (
        "bytes_recv",
        "bytes_sent",
        "frames_recv",
        "latency",
        "msgs_recv",
        "msgs_sent",
        "rejected",
    )

    def __init__(self) -> None:
        self.msgs_sent = 0
        self.bytes_sent = 0
        self.msgs_recv = 0
        self.frames_recv = 0
        self.bytes_recv = 0
        self.rejected = 0
        self.latency = LatencyHistogram()


class Counters:
    """Overhead counters of one agent's endpoint, per message kind.

    A publish counts once as sent (it leaves the sender once) and once as received at
    every recipient. ``rejected`` counts received messages that failed decoding or
    validation (kind ``"?"`` when the kind itself could not be read). ``frames_recv`` counts
    the frames that arrived: a message alone in its frame counts under its kind, a batch of
    several messages once under its own kind (its messages count as received, not as frames).
    """

    def __init__(self, agent_id: str) -> None:
        self.agent_id = agent_id
        self.kinds: dict[str, KindStats] = {}

    def _stats(self, kind: str) -> KindStats:
        stats = self.kinds.get(kind)
        if stats is None:
            stats = self.kinds[kind] = KindStats()
        return stats

    def count_sent(self, kind: str, nbytes: int) -> None:
        """One message of ``kind`` and ``nbytes`` left this agent."""
        stats = self.kinds.get(kind) or self._stats(kind)  # the lookup inline: a hot path
        stats.msgs_sent += 1
        stats.bytes_sent += nbytes

    def count_received(
        self, kind: str, nbytes: int, latency_ns: int | None, *, framed: bool = True
    ) -> None:
        """One message of ``kind`` arrived ``latency_ns`` after its send (``None``: not timed);
        ``framed``: in a frame of its own (not an item of a batch)."""
        stats = self.kinds.get(kind) or self._stats(kind)  # the lookup inline: a hot path
        stats.msgs_recv += 1
        stats.frames_recv += framed
        stats.bytes_recv += nbytes
        if latency_ns is not None:
            stats.latency.record(latency_ns)

    def count_rejected(self, kind: str | None, nbytes: int, *, framed: bool = True) -> None:
        """A received message was refused (its bytes still count as received)."""
        stats = self._stats(kind or "?")
        stats.rejected += 1
        stats.frames_recv += framed
        stats.bytes_recv += nbytes

    def count_frame(self, kind: str) -> None:
        """A frame of ``kind`` arrived that is not itself a message (a batch)."""
        self._stats(kind).frames_recv += 1

    def rows(self) -> list[dict[str, Any]]:
        """One row per kind: agent, kind, msgs/bytes sent/received, rejected, latency (us)."""
        out = []
        for kind in sorted(self.kinds):
            stats = self.kinds[kind]
            row: dict[str, Any] = {
                "agent": self.agent_id,
                "kind": kind,
                "msgs_sent": stats.msgs_sent,
                "bytes_sent": stats.bytes_sent,
                "msgs_recv": stats.msgs_recv,
                "frames_recv": stats.frames_recv,
                "bytes_recv": stats.bytes_recv,
                "rejected": stats.rejected,
                "latency_us_mean": _us(stats.latency.mean_ns()),
            }
            for q in LATENCY_QUANTILES:
                row[f"latency_us_p{round(q * 100)}"] = _us(stats.latency.quantile_ns(q))
            row["latency_us_max"] = _us(
                float(stats.latency.max_ns) if stats.latency.count else None
            )
            out.append(row)
        return out


def _us(ns: float | None) -> float | None:
    return None if ns is None else ns / NS_PER_US


def counters_table(counters: Iterable[Counters]) -> list[dict[str, Any]]:
    """Rows of several agents' counters, agent by agent."""
    return [row for c in counters for row in c.rows()]
