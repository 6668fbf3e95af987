"""Replay guard and overhead counters."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from messaging.counters import Counters, LatencyHistogram, counters_table
from messaging.errors import DuplicateMessage, LateMessage, RejectedMessage
from messaging.messages import Heartbeat, error_reply
from messaging.replay import ReplayGuard


def test_replay_guard_refuses_duplicates_and_replays_per_sender() -> None:
    guard = ReplayGuard()
    guard.check(Heartbeat("a", 0, 5))
    guard.check(Heartbeat("b", 0, 5))
    with pytest.raises(DuplicateMessage, match=r"Heartbeat\.seq=5"):
        guard.check(Heartbeat("a", 0, 5))
    with pytest.raises(DuplicateMessage, match="seq=3"):
        guard.check(Heartbeat("a", 0, 3))
    guard.check(Heartbeat("a", 0, 6))
    with pytest.raises(DuplicateMessage, match="seq=6"):
        guard.check(Heartbeat("a", 0, 6))
    guard.check(Heartbeat("c", 0, 0))  # a sender not seen before starts anywhere


def test_replay_guard_late_messages() -> None:
    guard = ReplayGuard()
    guard.check(Heartbeat("a", 4, 1), current_interval=4)
    with pytest.raises(LateMessage, match="interval=3"):
        guard.check(Heartbeat("b", 3, 1), current_interval=4)
    with pytest.raises(LateMessage, match="before interval 4"):
        guard.check(Heartbeat("a", 2, 2))
    with pytest.raises(DuplicateMessage):
        guard.check(Heartbeat("b", 3, 1), current_interval=3)
    try:
        guard.check(Heartbeat("a", 1, 9), current_interval=4)
    except RejectedMessage as exc:
        reply = error_reply(exc, sender="dso", interval=4, seq=0)
    assert (reply.refused_kind, reply.refused_seq) == ("Heartbeat", 9)


@given(st.lists(st.integers(0, 50), max_size=40))
def test_replay_guard_accepts_exactly_increasing_seqs(seqs: list[int]) -> None:
    guard = ReplayGuard()
    accepted, best = [], -1
    for seq in seqs:
        try:
            guard.check(Heartbeat("a", 0, seq))
            accepted.append(seq)
        except DuplicateMessage:
            assert seq <= best
        best = max(best, seq)
    assert accepted == sorted(set(accepted))


@given(st.lists(st.integers(0, 10**10), min_size=1, max_size=200))
def test_latency_quantiles_within_resolution(samples: list[int]) -> None:
    hist = LatencyHistogram()
    for ns in samples:
        hist.record(ns)
    ordered = sorted(samples)
    for q in (0.5, 0.9, 0.99, 1.0):
        exact = ordered[max(0, math.ceil(q * len(ordered)) - 1)]
        assert hist.quantile_ns(q) == pytest.approx(exact, rel=1 / 16, abs=1)
    assert hist.mean_ns() == pytest.approx(sum(samples) / len(samples))
    assert hist.max_ns == max(samples)


def test_histogram_merge_and_negative_latency() -> None:
    a, b = LatencyHistogram(), LatencyHistogram()
    a.record(-5)
    b.record(1000)
    a.merge(b)
    assert (a.count, a.max_ns, a.quantile_ns(0.0)) == (2, 1000, 0.0)
    assert LatencyHistogram().quantile_ns(0.5) is None


def test_counters_table() -> None:
    c1, c2 = Counters("a"), Counters("b")
    c1.count_sent("Bid", 30)
    c2.count_received("Bid", 30, 2000)
    c2.count_rejected(None, 7)
    rows = counters_table([c1, c2])
    assert [(r["agent"], r["kind"]) for r in rows] == [("a", "Bid"), ("b", "?"), ("b", "Bid")]
    assert rows[2]["latency_us_max"] == 2.0 and rows[0]["latency_us_p50"] is None
    assert rows[1]["rejected"] == 1 and rows[1]["bytes_recv"] == 7
    assert all(list(r) == list(rows[0]) for r in rows)
    assert sum(r["msgs_sent"] for r in rows) == 1
