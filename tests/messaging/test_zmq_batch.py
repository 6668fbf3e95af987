"""A relay with a clock: peers' messages held and released as batch frames; agents' bundles."""

from __future__ import annotations

import time
from collections.abc import Callable

import msgpack
import pytest

from messaging.batch import BATCH_ORIGIN, BUNDLE_TO, pack_batch, unpack_batch, unpack_bundle
from messaging.codec import MAX_FRAME_BYTES, encode
from messaging.errors import MalformedFrame, SenderMismatch
from messaging.messages import Bid, Leave, Message, Offer, Phase, PhaseAck
from messaging.zmq_transport import BATCH_KIND, Relay, ZmqTransport
from tests.messaging.zmq_helpers import SCHEMES, TEST_RECV_MS, connect, raw_dealer, running_relay

pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")

CLOCK = "dso"
#: How long a test waits to see that nothing arrives, ms.
QUIET_MS = 300


def _wait_until(done: Callable[[], bool], what: str) -> None:
    """Until ``done()`` holds (the relay thread counts after it acts), at most TEST_RECV_MS."""
    deadline = time.monotonic() + TEST_RECV_MS / 1000
    while not done():
        assert time.monotonic() < deadline, f"not {what} within {TEST_RECV_MS} ms"
        time.sleep(0.005)


def _wait_held(relay: Relay, n: int) -> None:
    _wait_until(lambda: relay.held_broadcasts >= n, f"{n} broadcasts held")


def _wait_held_directed(relay: Relay, n: int) -> None:
    _wait_until(lambda: relay.held_directed >= n, f"{n} directed messages held")


def _wait_published(relay: Relay, n: int) -> None:
    _wait_until(lambda: relay.stats.published >= n, f"{n} broadcasts published")


def _receive_until_phase(t: ZmqTransport) -> list[Message | type[Exception]]:
    """Everything ``t`` receives up to and including the next ``Phase`` (errors by class)."""
    got: list[Message | type[Exception]] = []
    while not got or not isinstance(got[-1], Phase):
        try:
            msg = t.recv(TEST_RECV_MS)
        except (MalformedFrame, SenderMismatch) as exc:
            got.append(type(exc))
            continue
        assert msg is not None, f"nothing after {got}"
        got.append(msg)
    return got


@pytest.mark.parametrize("scheme", SCHEMES)
def test_peer_messages_are_held_until_the_clock_speaks_then_arrive_in_one_frame(
    scheme: str,
) -> None:
    with running_relay(scheme, clock=CLOCK) as relay:
        dso, a, b, c = (connect(relay, i) for i in (CLOCK, "a", "b", "c"))
        a.publish(Bid("a", 0, 0, 1.0, 0.2))
        b.publish(Offer("b", 0, 0, 2.0, 0.1))
        _wait_held(relay, 2)
        a.send("c", Leave("a", 0, 1, "held too"))
        b.send("c", Leave("b", 0, 1, "held too"))
        _wait_held_directed(relay, 2)
        assert c.recv(QUIET_MS) is None  # held at the relay
        a.send(CLOCK, PhaseAck("a", 0, 2, "orders", 0))  # to the clock: never held
        assert dso.recv(TEST_RECV_MS) == PhaseAck("a", 0, 2, "orders", 0)
        dso.publish(Phase(CLOCK, 0, 0, "clear"))
        phase = Phase(CLOCK, 0, 0, "clear")
        directed = [Leave("a", 0, 1, "held too"), Leave("b", 0, 1, "held too")]
        broadcasts = [Bid("a", 0, 0, 1.0, 0.2), Offer("b", 0, 0, 2.0, 0.1), phase]
        assert _receive_until_phase(c) == directed + broadcasts  # peers' directed ones first
        assert _receive_until_phase(a) == broadcasts[1:]  # its own publish is not echoed
        _wait_published(relay, 3)
        assert relay.stats.batches == 2 and relay.stats.published == 3
        assert relay.stats.directed == 3  # the two held ones and the ack
        kinds = c.counters.kinds
        assert kinds[BATCH_KIND].frames_recv == 2 and kinds[BATCH_KIND].msgs_recv == 0
        assert (kinds["Bid"].msgs_recv, kinds["Bid"].frames_recv) == (1, 0)
        assert (kinds["Leave"].msgs_recv, kinds["Leave"].frames_recv) == (2, 0)
        assert (kinds["Phase"].msgs_recv, kinds["Phase"].frames_recv) == (1, 0)  # in the batch
        for t in (dso, a, b, c):
            t.close()


def test_a_bundle_is_one_frame_routed_item_by_item_and_sent_before_a_wait() -> None:
    with running_relay("ipc", clock=CLOCK) as relay:
        dso, c = connect(relay, CLOCK, bundle_sends=True), connect(relay, "c")
        a = connect(relay, "a", bundle_sends=True)
        a.publish(Bid("a", 0, 0, 1.0, 0.2))
        a.send("c", Leave("a", 0, 1, "to a peer"))
        a.send(CLOCK, PhaseAck("a", 0, 2, "orders", 0))
        assert a.pending == 3 and relay.stats.bundles == 0  # queued, not sent
        assert a.recv(0) is None and a.pending == 3  # a poll that does not wait keeps them
        assert a.recv(QUIET_MS) is None and a.pending == 0  # a receive that may wait sends them
        assert dso.recv(TEST_RECV_MS) == PhaseAck("a", 0, 2, "orders", 0)
        assert relay.stats.bundles == 1 and relay.held_broadcasts == 1
        assert relay.held_directed == 1
        dso.send("c", Leave(CLOCK, 0, 3, "the clock's own directed message"))
        dso.publish(Phase(CLOCK, 0, 4, "clear"))
        dso.flush()
        got = _receive_until_phase(c)
        assert got == [
            Leave("a", 0, 1, "to a peer"),  # the peers' held directed messages first
            Bid("a", 0, 0, 1.0, 0.2),  # the held broadcasts before the clock's directed one
            Leave(CLOCK, 0, 3, "the clock's own directed message"),
            Phase(CLOCK, 0, 4, "clear"),
        ]
        assert relay.stats.bundles == 2
        assert a.counters.kinds["Bid"].msgs_sent == 1  # counted as sent when queued
        for t in (dso, a, c):
            t.close()


def test_a_bundle_goes_out_on_close() -> None:
    with running_relay("ipc") as relay, connect(relay, "c") as c:
        a = connect(relay, "a", bundle_sends=True)
        a.send("c", Leave("a", 0, 1, "first"))
        a.send("c", Leave("a", 0, 2, "second"))
        a.close()
        assert c.recv(TEST_RECV_MS) == Leave("a", 0, 1, "first")
        assert c.recv(TEST_RECV_MS) == Leave("a", 0, 2, "second")


@pytest.mark.parametrize(
    "bundle",
    [
        b"\xc1",  # not msgpack
        msgpack.packb([b"c"]),  # odd: an address without its frame
        msgpack.packb([b"", b"hello"]),  # a relay control verb inside a bundle
        msgpack.packb([BUNDLE_TO, b"x"]),  # a bundle inside a bundle
        msgpack.packb([b"not an id!", b"frame"]),
    ],
)
def test_a_bad_bundle_is_refused_counted_and_routes_nothing(bundle: bytes) -> None:
    with pytest.raises(MalformedFrame):
        unpack_bundle(bundle)
    with running_relay("ipc", clock=CLOCK) as relay, connect(relay, "c") as c:
        rogue = raw_dealer(relay, b"a")
        try:
            rogue.send_multipart([b"", b"hello"])
            _wait_member(relay, b"a")
            rogue.send_multipart([BUNDLE_TO, bundle])
            _wait_until(lambda: relay.stats.malformed >= 1, "the bundle refused")
        finally:
            rogue.close()
        assert relay.stats.bundles == 0 and relay.held_broadcasts == relay.held_directed == 0
        assert c.recv(QUIET_MS) is None


def test_one_held_broadcast_goes_alone_and_without_a_clock_nothing_is_held() -> None:
    with running_relay("ipc", clock=CLOCK) as relay:
        dso, a, c = (connect(relay, i) for i in (CLOCK, "a", "c"))
        a.publish(Bid("a", 0, 0, 1.0, 0.2))
        _wait_held(relay, 1)
        dso.send("c", Leave(CLOCK, 0, 0, "any message of the clock releases them"))
        assert isinstance(c.recv(TEST_RECV_MS), Bid) and isinstance(c.recv(TEST_RECV_MS), Leave)
        assert relay.stats.batches == 0 and BATCH_KIND not in c.counters.kinds
        for t in (dso, a, c):
            t.close()
    with running_relay("ipc") as relay, connect(relay, "a") as a, connect(relay, "c") as c:
        a.publish(Bid("a", 0, 0, 1.0, 0.2))
        assert c.recv(TEST_RECV_MS) == Bid("a", 0, 0, 1.0, 0.2)


def test_a_forged_sender_inside_a_batch_is_refused_and_the_rest_delivered() -> None:
    with running_relay("ipc", clock=CLOCK) as relay:
        dso, c = connect(relay, CLOCK), connect(relay, "c")
        forger = raw_dealer(relay, b"a")
        b = connect(relay, "b")
        try:
            forger.send_multipart([b"", b"hello"])
            _wait_member(relay, b"a")
            forger.send_multipart([b"*", encode(Bid("b", 0, 5, 1.0, 0.2))])  # claims to be b
            _wait_held(relay, 1)
            b.publish(Offer("b", 0, 0, 2.0, 0.1))
            _wait_held(relay, 2)
            dso.publish(Phase(CLOCK, 0, 0, "clear"))
            got = _receive_until_phase(c)
        finally:
            forger.close()
        assert got == [SenderMismatch, Offer("b", 0, 0, 2.0, 0.1), Phase(CLOCK, 0, 0, "clear")]
        assert c.counters.kinds["Bid"].rejected == 1
        for t in (dso, b, c):
            t.close()


def _wait_member(relay: Relay, member: bytes) -> None:
    _wait_until(lambda: member in relay.members, f"{member!r} joined")


@pytest.mark.parametrize("clock", [CLOCK, None])
def test_nobody_can_send_as_the_batch_origin(clock: str | None) -> None:
    """A peer whose routing id is the batch marker could forge any sender: the relay refuses it."""
    with running_relay("ipc", clock=clock) as relay:
        c = connect(relay, "c")
        forger = raw_dealer(relay, BATCH_ORIGIN)
        try:
            fake = pack_batch([(CLOCK.encode(), encode(Phase(CLOCK, 0, 0, "clear")))] * 2)
            forger.send_multipart([b"*", fake])
            _wait_until(lambda: relay.stats.refused_origin >= 1, "the forged batch refused")
        finally:
            forger.close()
        assert c.recv(QUIET_MS) is None and relay.stats.published == 0
        c.close()


def test_held_broadcasts_beyond_one_frame_are_split_and_all_arrive_in_order() -> None:
    reason = "x" * 256
    n = MAX_FRAME_BYTES // len(encode(Leave("a", 0, 0, reason))) + 50  # more than one frame
    with running_relay("ipc", clock=CLOCK) as relay:
        dso, a, c = (connect(relay, i) for i in (CLOCK, "a", "c"))
        for seq in range(n):
            a.publish(Leave("a", 0, seq, reason))
        _wait_until(lambda: relay.stats.published + relay.held_broadcasts >= n, "all at the relay")
        dso.publish(Phase(CLOCK, 0, 0, "clear"))
        got = _receive_until_phase(c)
        assert [m.seq for m in got[:-1] if isinstance(m, Leave)] == list(range(n))
        _wait_published(relay, n + 1)
        assert relay.stats.batches >= 2 and relay.stats.published == n + 1
        assert c.counters.kinds[BATCH_KIND].frames_recv == relay.stats.batches
        assert c.take_link_drops() == 0  # no batch exceeded the sockets' frame limit
        for t in (dso, a, c):
            t.close()


@pytest.mark.parametrize(
    "batch",
    [
        b"\xc1",  # not msgpack
        msgpack.packb({"a": b"x"}),  # not an array
        msgpack.packb([b"a"]),  # odd: an origin without its frame
        msgpack.packb([b"a", "text"]),  # not bytes
        msgpack.packb([b"a", [b"nested"]]),
        msgpack.packb([b"not an id!", b"frame"]),  # origin is no agent id
        msgpack.packb([b"a", b"x" * MAX_FRAME_BYTES]),  # beyond the frame limit
    ],
)
def test_a_bad_batch_is_a_malformed_frame(batch: bytes) -> None:
    with pytest.raises(MalformedFrame):
        unpack_batch(batch)


def test_a_bad_batch_on_the_wire_is_refused_counted_and_the_stream_goes_on() -> None:
    """A subscriber receiving a malformed batch (only a relay could send one) refuses it."""
    with running_relay("ipc", clock=CLOCK) as relay:
        c = connect(relay, "c")
        pub = relay._pub  # the relay's own PUB socket: what only the relay can send
        pub.send_multipart([b"*\x00", BATCH_ORIGIN, b"\xc1"])
        with pytest.raises(MalformedFrame):
            c.recv(TEST_RECV_MS)
        assert c.counters.kinds[BATCH_KIND].rejected == 1
        dso = connect(relay, CLOCK)
        dso.publish(Phase(CLOCK, 0, 0, "clear"))
        assert c.recv(TEST_RECV_MS) == Phase(CLOCK, 0, 0, "clear")
        for t in (dso, c):
            t.close()
