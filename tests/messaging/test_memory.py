"""In-memory bus: delivery order, validation at send, counters, errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from messaging.errors import (
    InvalidMessage,
    SenderMismatch,
    TransportClosed,
    TransportError,
    UnknownRecipient,
)
from messaging.memory import InMemoryBus
from messaging.messages import KINDS, Bid, Heartbeat, Message, Phase
from messaging.transport import Transport
from tests.messaging.strategies import messages, messages_of


def test_endpoint_is_a_transport() -> None:
    ep = InMemoryBus().endpoint("p01")
    assert isinstance(ep, Transport)
    assert ep.agent_id == "p01"


@pytest.mark.parametrize("name", sorted(KINDS))
@given(data=st.data())
def test_round_trip_every_kind(name: str, data: st.DataObject) -> None:
    bus = InMemoryBus()
    a, b = bus.endpoint("a"), bus.endpoint("b")
    msg = data.draw(messages_of(KINDS[name]))
    msg = type(msg)("a", *[getattr(msg, f) for f, _ in msg.FIELDS[1:]])
    a.send("b", msg)
    assert b.recv() == msg
    assert b.recv() is None


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.booleans()), max_size=30))
def test_fifo_per_recipient_in_send_order(plan: list[tuple[str, bool]]) -> None:
    bus = InMemoryBus()
    eps = {name: bus.endpoint(name) for name in ("a", "b", "c", "d")}
    expected: dict[str, list[Message]] = {name: [] for name in eps}
    for seq, (sender, broadcast) in enumerate(plan):
        msg = Heartbeat(sender, 0, seq)
        if broadcast:
            eps[sender].publish(msg)
            for name in eps:
                if name != sender:
                    expected[name].append(msg)
        else:
            eps[sender].send("d", msg)
            expected["d"].append(msg)
    for name in eps:
        assert bus.pending(name) == len(expected[name])
        assert bus.drain(name) == expected[name]
        assert bus.pending(name) == 0


def test_invalid_message_refused_at_send_and_nothing_queued() -> None:
    bus = InMemoryBus()
    a, _ = bus.endpoint("a"), bus.endpoint("b")
    with pytest.raises(InvalidMessage, match="quantity_kwh"):
        a.send("b", Bid("a", 0, 1, float("nan"), 0.1))
    with pytest.raises(InvalidMessage):
        a.publish(Bid("a", 0, 1, -1.0, 0.1))
    with pytest.raises(SenderMismatch, match="'b'"):
        a.send("b", Bid("b", 0, 1, 1.0, 0.1))
    assert bus.pending("b") == 0
    assert a.counters.rows() == []


def test_unknown_recipient_duplicate_id_and_closed_endpoint() -> None:
    bus = InMemoryBus()
    a = bus.endpoint("a")
    with pytest.raises(UnknownRecipient, match="'zz'"):
        a.send("zz", Heartbeat("a", 0, 0))
    with pytest.raises(TransportError, match="already"):
        bus.endpoint("a")
    with pytest.raises(TransportError, match="not a valid agent id"):
        bus.endpoint("bad id")
    a.close()
    assert bus.agents == ()
    with pytest.raises(TransportClosed):
        a.recv()


def test_counters_count_once_per_publish_and_per_recipient() -> None:
    bus = InMemoryBus()
    dso, p1, p2 = bus.endpoint("dso"), bus.endpoint("p1"), bus.endpoint("p2")
    msg = Phase("dso", 0, 0, "open")
    dso.publish(msg)
    p1.send("dso", Bid("p1", 0, 0, 1.0, 0.2))
    assert p1.recv() == msg and p2.recv() == msg and dso.recv() is not None
    rows = {(r["agent"], r["kind"]): r for r in bus.counters_rows()}
    size = rows["dso", "Phase"]["bytes_sent"]
    assert size > 0
    assert rows["dso", "Phase"]["msgs_sent"] == 1
    assert rows["p1", "Phase"]["msgs_recv"] == rows["p2", "Phase"]["msgs_recv"] == 1
    assert rows["p2", "Phase"]["bytes_recv"] == size
    assert rows["dso", "Bid"]["msgs_recv"] == 1
    assert rows["p1", "Phase"]["latency_us_p50"] >= 0


@given(msg=messages())
def test_byte_counting_can_be_switched_off(msg: Message) -> None:
    bus = InMemoryBus(count_bytes=False)
    a, b = bus.endpoint(msg.sender), bus.endpoint("other-agent")
    a.send("other-agent", msg)
    assert b.recv() is msg
    (row,) = a.counters.rows()
    assert row["msgs_sent"] == 1 and row["bytes_sent"] == 0
