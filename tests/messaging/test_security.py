"""CURVE key store and authentication: accept, reject, sender binding."""

from __future__ import annotations

import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from messaging.codec import encode
from messaging.errors import SecurityError, SenderMismatch, TransportTimeout
from messaging.messages import Bid, Heartbeat
from messaging.security import RELAY_KEY_NAME, KeyStore, init_keystore, make_client
from messaging.zmq_transport import BROADCAST_TOPIC, TOPIC_END, Relay
from tests.messaging.zmq_helpers import REFUSED_CONNECT_MS, TEST_RECV_MS, connect, running_relay

pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> KeyStore:
    root = tmp_path_factory.mktemp("keys")
    created, kept = init_keystore(root, ["p01", "p02", "dso"])
    assert created == [RELAY_KEY_NAME, "p01", "p02", "dso"] and kept == []
    return KeyStore(root)


@pytest.fixture  # one relay per test: a test that takes over an identity must not leave it taken
def secure_relay(store: KeyStore) -> Iterator[Relay]:
    with running_relay("tcp", keys=store) as relay:
        yield relay


def test_keystore_layout_and_idempotent_init(store: KeyStore) -> None:
    assert store.agent_ids() == ("dso", "p01", "p02")
    mode = stat.S_IMODE(store.secret_path("p01").stat().st_mode)
    assert mode == 0o600
    public, secret = store.key_pair("p01")
    assert public == store.public_key("p01") and len(secret) == 40
    created, kept = init_keystore(store.root, ["p01", "p03"])
    try:
        assert created == ["p03"] and kept == [RELAY_KEY_NAME, "p01"]
        assert store.key_pair("p01") == (public, secret)
    finally:
        store.public_path("p03").unlink()
        store.secret_path("p03").unlink()


def test_keystore_errors(tmp_path: Path, store: KeyStore) -> None:
    with pytest.raises(SecurityError, match="reserved"):
        init_keystore(tmp_path, ["relay"])
    with pytest.raises(SecurityError, match="not a valid agent id"):
        init_keystore(tmp_path, ["bad id"])
    with pytest.raises(SecurityError, match="does not exist"):
        store.key_pair("nobody")
    with pytest.raises(SecurityError, match="not a directory"):
        KeyStore(tmp_path / "missing").agent_ids()
    bad = KeyStore(tmp_path)
    bad.public_path("x").parent.mkdir(parents=True, exist_ok=True)
    bad.public_path("x").write_text("garbage")
    with pytest.raises(SecurityError, match="cannot read"):
        bad.public_key("x")


def test_authorised_agents_exchange(secure_relay: Relay, store: KeyStore) -> None:
    with connect(secure_relay, "p01", store) as p01, connect(secure_relay, "dso", store) as dso:
        p01.send("dso", Bid("p01", 0, 1, 2.0, 0.15))
        assert dso.recv(TEST_RECV_MS) == Bid("p01", 0, 1, 2.0, 0.15)
        dso.publish(Heartbeat("dso", 0, 1))
        assert p01.recv(TEST_RECV_MS) == Heartbeat("dso", 0, 1)


def test_unauthorised_key_cannot_connect(
    secure_relay: Relay, store: KeyStore, tmp_path: Path
) -> None:
    stranger = KeyStore(tmp_path)
    init_keystore(tmp_path, ["p01"])
    # A key pair the relay never authorised, presented with the relay's real public key.
    stranger.public_path(RELAY_KEY_NAME).write_bytes(store.public_path(RELAY_KEY_NAME).read_bytes())
    joins = secure_relay.stats.joins
    with pytest.raises(TransportTimeout):
        connect(secure_relay, "p01", stranger, connect_timeout_ms=REFUSED_CONNECT_MS)
    assert secure_relay.stats.joins == joins


def test_missing_own_key_is_a_security_error(secure_relay: Relay, store: KeyStore) -> None:
    with pytest.raises(SecurityError, match="'p09'"):
        connect(secure_relay, "p09", store)


def test_plaintext_peer_cannot_connect(secure_relay: Relay) -> None:
    joins = secure_relay.stats.joins
    with pytest.raises(TransportTimeout):
        connect(secure_relay, "p01", None, connect_timeout_ms=REFUSED_CONNECT_MS)
    assert secure_relay.stats.joins == joins


def _authenticated_dealer(
    relay: Relay, store: KeyStore, key_of: str, routing_id: str
) -> zmq.Socket:
    sock = relay.context.socket(zmq.DEALER)
    sock.linger = 0
    make_client(sock, store, key_of)
    sock.routing_id = routing_id.encode()
    sock.connect(relay.endpoints.upstream)
    return sock


def test_routing_id_must_match_authenticated_key(secure_relay: Relay, store: KeyStore) -> None:
    with connect(secure_relay, "dso", store) as dso:
        refused_before = secure_relay.stats.refused_unauthenticated
        impostor = _authenticated_dealer(secure_relay, store, key_of="p02", routing_id="p01")
        try:
            impostor.send_multipart([b"dso", encode(Bid("p01", 0, 1, 1.0, 0.1))])
            deadline_ms = TEST_RECV_MS
            while secure_relay.stats.refused_unauthenticated == refused_before and deadline_ms:
                assert dso.recv(10) is None
                deadline_ms -= 10
            assert secure_relay.stats.refused_unauthenticated == refused_before + 1
            assert dso.recv(50) is None
        finally:
            impostor.close()


def test_claimed_sender_must_match_authenticated_key(secure_relay: Relay, store: KeyStore) -> None:
    with connect(secure_relay, "dso", store) as dso:
        liar = _authenticated_dealer(secure_relay, store, key_of="p02", routing_id="p02")
        try:
            liar.send_multipart([b"dso", encode(Bid("p01", 0, 1, 1.0, 0.1))])
            liar.send_multipart([b"dso", encode(Bid("p02", 0, 2, 1.0, 0.1))])
            with pytest.raises(SenderMismatch, match="'p01'") as info:
                dso.recv(TEST_RECV_MS)
            assert info.value.origin == "p02"
            assert dso.recv(TEST_RECV_MS) == Bid("p02", 0, 2, 1.0, 0.1)
        finally:
            liar.close()


def test_agent_cannot_read_another_agents_topic(secure_relay: Relay, store: KeyStore) -> None:
    with connect(secure_relay, "p01", store) as p01, connect(secure_relay, "dso", store) as dso:
        refused = secure_relay.stats.refused_subscriptions
        spy = secure_relay.context.socket(zmq.SUB)
        spy.linger = 0
        make_client(spy, store, "p02")
        spy.subscribe(b"p01" + TOPIC_END)
        spy.subscribe(BROADCAST_TOPIC)
        spy.connect(secure_relay.endpoints.downstream)
        try:
            seq = 0
            while not spy.poll(50):  # until the spy's broadcast subscription is live
                seq += 1
                assert seq < TEST_RECV_MS // 50
                dso.publish(Heartbeat("dso", 0, seq))
            while spy.poll(50):
                spy.recv_multipart()
            assert secure_relay.stats.refused_subscriptions == refused + 1
            dso.send("p01", Bid("dso", 0, seq + 1, 1.0, 0.1))
            dso.publish(Heartbeat("dso", 0, seq + 2))
            assert spy.recv_multipart()[0] == BROADCAST_TOPIC  # never p01's directed Bid
            assert p01.recv(TEST_RECV_MS) is not None
        finally:
            spy.close()


def _wait_for(condition, timeout_ms: int = TEST_RECV_MS) -> None:
    deadline = time.monotonic() + timeout_ms / 1000
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_only_the_runs_agents_are_admitted_and_failures_counted(store: KeyStore) -> None:
    """A key left in the store by an earlier run (p02) is refused; the failure is counted."""
    with running_relay("tcp", keys=store, agents=["dso", "p01"]) as relay:
        with connect(relay, "p01", store):  # an agent of the run gets in
            pass
        failures = relay.stats.handshake_failures
        with pytest.raises(TransportTimeout):
            connect(relay, "p02", store, connect_timeout_ms=REFUSED_CONNECT_MS)
        _wait_for(lambda: relay.stats.handshake_failures > failures)


def test_routing_id_takeover_is_refused(secure_relay: Relay, store: KeyStore) -> None:
    """An authorised peer (p02) connecting under p01's routing id cuts nothing of p01's."""
    with connect(secure_relay, "p01", store) as p01, connect(secure_relay, "dso", store) as dso:
        thief = _authenticated_dealer(secure_relay, store, key_of="p02", routing_id="p01")
        try:
            thief.send_multipart([b"dso", encode(Bid("p01", 0, 1, 1.0, 0.1))])
            for seq in range(1, 21):  # p01 keeps its connection both ways
                p01.send("dso", Heartbeat("p01", 0, seq))
                assert dso.recv(TEST_RECV_MS) == Heartbeat("p01", 0, seq)
                dso.send("p01", Heartbeat("dso", 0, seq))
                assert p01.recv(TEST_RECV_MS) == Heartbeat("dso", 0, seq)
                time.sleep(0.01)
            assert p01.take_link_drops() == 0
        finally:
            thief.close()
