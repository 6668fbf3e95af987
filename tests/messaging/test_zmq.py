"""ZeroMQ relay and endpoints over inproc, ipc and tcp (no security)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest
import zmq
from hypothesis import given, settings
from hypothesis import strategies as st

from messaging.codec import encode
from messaging.endpoints import RelayEndpoints, ZmqConfig
from messaging.errors import (
    InvalidMessage,
    MalformedFrame,
    ProtocolVersionError,
    SecurityError,
    SenderMismatch,
    TransportClosed,
    TransportError,
    TransportTimeout,
    UnknownKind,
)
from messaging.messages import KINDS, Bid, Heartbeat, Message, Phase, error_reply
from messaging.security import KeyStore
from messaging.transport import Transport
from messaging.zmq_transport import Relay, ZmqTransport
from tests.messaging.frames import encode_header
from tests.messaging.strategies import messages_of
from tests.messaging.zmq_helpers import SCHEMES, TEST_RECV_MS, connect, raw_dealer, running_relay

Pair = tuple[Relay, ZmqTransport, ZmqTransport]
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")


@pytest.fixture(scope="module", params=SCHEMES)
def pair(request: pytest.FixtureRequest) -> Iterator[Pair]:
    with running_relay(request.param) as relay:
        a, b = connect(relay, "a"), connect(relay, "b")
        yield relay, a, b
        a.close()
        b.close()


def _from(sender: str, msg: Message) -> Message:
    return dataclasses.replace(msg, sender=sender)


@pytest.mark.parametrize("name", sorted(KINDS))
@settings(max_examples=10)
@given(data=st.data())
def test_round_trip_every_kind(pair: Pair, name: str, data: st.DataObject) -> None:
    _, a, b = pair
    assert isinstance(a, Transport)
    msg = _from("a", data.draw(messages_of(KINDS[name])))
    a.send("b", msg)
    assert b.recv(TEST_RECV_MS) == msg
    a.publish(msg)
    assert b.recv(TEST_RECV_MS) == msg
    assert a.recv(0) is None  # a publish never comes back to its sender


def test_fifo_per_sender_across_directed_and_broadcast(pair: Pair) -> None:
    _, a, b = pair
    sent = []
    for seq in range(200):
        msg = Heartbeat("a", 0, seq)
        (a.publish if seq % 3 else lambda m: a.send("b", m))(msg)
        sent.append(msg)
    assert [b.recv(TEST_RECV_MS) for _ in sent] == sent
    rows = {r["kind"]: r for r in b.counters.rows()}
    assert rows["Heartbeat"]["msgs_recv"] >= 200 and rows["Heartbeat"]["latency_us_p99"] > 0


def test_recv_timeout_returns_none(pair: Pair) -> None:
    _, a, _ = pair
    start = time.monotonic()
    assert a.recv(30) is None
    assert time.monotonic() - start >= 0.025
    assert a.recv(0) is None


@pytest.mark.parametrize("scheme", SCHEMES)
def test_bad_frames_on_receive_raise_typed_errors_and_loop_goes_on(scheme: str) -> None:
    good = encode(Bid("evil", 2, 7, 1.0, 0.1))
    bad_frames = {
        ProtocolVersionError: b"\x00\x09" + good[2:],
        UnknownKind: encode_header("Gossip") + msgpack.packb(["evil", 2, 7]),
        MalformedFrame: encode_header("Bid") + b"\xc1",
        InvalidMessage: encode_header("Bid") + msgpack.packb(["evil", 2, 7, -1.0, 0.1]),
        SenderMismatch: encode(Bid("a", 2, 8, 1.0, 0.1)),
    }
    with running_relay(scheme) as relay, connect(relay, "b") as b:
        raw = raw_dealer(relay, b"evil")
        try:
            for frame in bad_frames.values():
                raw.send_multipart([b"b", frame])
            raw.send_multipart([b"b", good, b"extra frame"])  # the relay drops it
            raw.send_multipart([b"b", good])
            for error in bad_frames:
                with pytest.raises(error) as info:
                    b.recv(TEST_RECV_MS)
                assert info.value.origin == "evil"
            assert b.recv(TEST_RECV_MS) == Bid("evil", 2, 7, 1.0, 0.1)
        finally:
            raw.close()
        assert relay.stats.malformed == 1
        assert sum(r["rejected"] for r in b.counters.rows()) == len(bad_frames)
        assert sum(r["msgs_recv"] for r in b.counters.rows()) == 1
        reply = error_reply(info.value, sender="b", interval=2, seq=1)
        assert reply.refused_kind == "Bid" and reply.refused_seq == 8


def test_send_checks_and_closed_endpoint() -> None:
    with running_relay("inproc") as relay, connect(relay, "a") as a:
        with pytest.raises(SenderMismatch):
            a.send("b", Heartbeat("b", 0, 0))
        with pytest.raises(InvalidMessage):
            a.publish(Phase("a", 0, 0, "lunch"))
        with pytest.raises(TransportError, match="not a valid agent id"):
            a.send("no such id!", Heartbeat("a", 0, 0))
        a.close()
        with pytest.raises(TransportClosed):
            a.send("b", Heartbeat("a", 0, 1))
        with pytest.raises(TransportClosed):
            a.recv()
        a.close()  # idempotent


def test_relay_membership_and_unknown_recipient() -> None:
    with running_relay("ipc") as relay:
        a = connect(relay, "a")
        with connect(relay, "b") as b:
            assert relay.members == {b"a", b"b"}
            a.send("ghost", Heartbeat("a", 0, 0))
            a.send("b", Heartbeat("a", 0, 1))
            assert b.recv(TEST_RECV_MS) == Heartbeat("a", 0, 1)
        _wait_for(lambda: relay.stats.leaves == 1)
        a.close()
        _wait_for(lambda: relay.stats.leaves == 2)
        assert relay.stats.dropped_unknown_recipient == 1
        assert relay.stats.directed == 1 and relay.stats.joins == 2
        assert relay.members == set()


def _wait_for(condition: object, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def test_connect_without_relay_times_out() -> None:
    context = zmq.Context()
    try:
        with pytest.raises(TransportTimeout, match="no welcome"):
            ZmqTransport(
                "a",
                RelayEndpoints.tcp(upstream_port=1, downstream_port=2),
                context=context,
                connect_timeout_ms=200,
            )
    finally:
        context.destroy(linger=0)


def test_endpoint_configuration_checks() -> None:
    with pytest.raises(TransportError, match="longer than"):
        RelayEndpoints.ipc("/tmp/" + "x" * 120)
    exposed = RelayEndpoints.tcp(host="0.0.0.0")
    assert not exposed.is_loopback and RelayEndpoints.tcp().is_loopback
    with pytest.raises(SecurityError, match="needs CURVE keys"):
        Relay(exposed)
    with pytest.raises(TransportError, match="not a valid agent id"):
        ZmqTransport("", RelayEndpoints.inproc())


def test_zmq_config_gives_loopback_endpoints(tmp_path: Path) -> None:
    assert ZmqConfig().endpoints(tmp_path) == RelayEndpoints.ipc(tmp_path)
    assert ZmqConfig(scheme="tcp").endpoints().is_loopback
    assert ZmqConfig(scheme="tcp", upstream_port=5555).endpoints().upstream.endswith(":5555")
    assert ZmqConfig(scheme="inproc").endpoints(name="x") == RelayEndpoints.inproc("x")
    with pytest.raises(TransportError, match="ipc_dir"):
        ZmqConfig().endpoints()
    assert ZmqConfig().keystore() is None
    assert ZmqConfig(keys_dir=str(tmp_path)).keystore() == KeyStore(tmp_path)
    with pytest.raises(TransportError, match="upstream_port=70000"):
        ZmqConfig(scheme="tcp", upstream_port=70000)
    with pytest.raises(TransportError, match="scheme='udp'"):
        ZmqConfig(scheme="udp")  # type: ignore[arg-type]


def test_oversized_frame_is_never_read_and_its_sender_dropped() -> None:
    """A 5 MB frame (the limit is the largest legal message) is not forwarded; the relay
    drops the sender's connection and counts it; traffic of others goes on."""
    with running_relay("ipc") as relay, connect(relay, "a") as a, connect(relay, "b") as b:
        disconnects = relay.stats.disconnects
        bomber = relay.context.socket(zmq.DEALER)
        bomber.linger = 1000
        bomber.routing_id = b"bomber"
        bomber.connect(relay.endpoints.upstream)
        bomber.send_multipart([b"*", b"\x00" * (5 * 1024 * 1024)])
        deadline = time.monotonic() + TEST_RECV_MS / 1000
        while relay.stats.disconnects == disconnects:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        bomber.close()
        assert relay.stats.published == 0 and a.recv(100) is None
        a.send("b", Heartbeat("a", 0, 1))
        assert b.recv(TEST_RECV_MS) == Heartbeat("a", 0, 1)


def test_endpoint_counts_a_dropped_connection() -> None:
    """When the relay goes away the endpoint notices the drop (it then resynchronises)."""
    with running_relay("ipc") as relay:
        a = connect(relay, "a")
        assert a.take_link_drops() == 0
        relay.close()
        deadline = time.monotonic() + TEST_RECV_MS / 1000
        drops = 0
        while not drops:
            assert time.monotonic() < deadline
            time.sleep(0.02)
            drops = a.take_link_drops()
        a.close()
