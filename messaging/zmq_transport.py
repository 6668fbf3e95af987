"""ZeroMQ transport: a relay (message router, not a market participant) and agent endpoints.

Topology (two sockets per agent, two at the relay, whatever the number of agents)::

    agent DEALER --[to, frame]--> relay ROUTER             (upstream: directed and publish)
    agent SUB   <--[topic, origin, frame]-- relay PUB      (downstream)

``frame`` is the codec's frame (:func:`messaging.codec.encode`); the relay never decodes it.

The relay forwards a directed message on the recipient's topic (``<id>\\0``) and a publish
on the broadcast topic, stamping the origin (the routing id, which under CURVE it checks
against the authenticated ``User-Id``). Each agent subscribes to its own topic and the
broadcast topic, so all its messages arrive over one connection in the relay's order:
FIFO per sender across directed and broadcast messages, as on the in-memory bus. A relay
with a clock (the deployment's DSO) holds every broadcast, the clock's own included, until
the end of the clock's next frame and then sends them as one batch frame
(:mod:`messaging.batch`): they still arrive in order and before the clock's later messages,
but a sender's directed message may overtake its broadcasts. An endpoint made with
``bundle_sends`` queues what it sends and sends it, as one bundle frame, before it next waits
(or :meth:`ZmqTransport.flush`); the relay routes a bundle's messages one by one.

Endpoints join with a hello handshake (retried until the relay's welcome arrives on the
agent's topic), so nothing sent to a joined agent is lost to a late subscription. The
relay drops (and counts) directed messages to agents that have not joined. Queues are
unbounded (high-water marks 0), so a slow receiver delays but never loses messages.

Every socket refuses frames larger than the largest legal message
(``ZMQ_MAXMSGSIZE`` = :data:`messaging.codec.MAX_FRAME_BYTES`): libzmq reads the size
prefix and drops the sender's connection without reading or buffering the frame. A
monitor on the relay's sockets counts dropped connections and failed handshakes (CURVE
authentication refused, wrong server key, not ZMTP) in :class:`RelayStats`. A routing id
already in use is refused (no hand-over), so no peer can cut another's connection by
taking its id. An endpoint counts the drops of its own connections
(:attr:`ZmqTransport.link_drops`): messages in flight on a dropped connection are lost, so
its owner resynchronises (see ``docs/deploy.md``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import struct
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import zmq

from messaging.batch import (
    BATCH_ORIGIN,
    BROADCAST_TO,
    BUNDLE_TO,
    EMPTY_BATCH_BYTES,
    item_bytes,
    pack_batch,
    unpack_batch,
    unpack_bundle,
)
from messaging.codec import MAX_FRAME_BYTES, decode_frame, encode
from messaging.counters import Counters
from messaging.endpoints import RelayEndpoints
from messaging.errors import (
    MalformedFrame,
    MessagingError,
    RejectedMessage,
    SecurityError,
    SenderMuted,
    TransportClosed,
    TransportError,
    TransportTimeout,
)
from messaging.messages import AGENT_ID_PATTERN, Message
from messaging.security import KeyStore, make_client, make_server
from messaging.transport import NO_WAIT, check_own_sender, sender_mismatch

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from messaging.authenticator import KeyStoreAuthenticator

log = logging.getLogger(__name__)

#: Suggested bound of an agent loop's blocking recv, ms (recv itself defaults to no wait).
RECV_TIMEOUT_MS = 1000
#: How long an endpoint waits for the relay's welcome when it joins, ms.
CONNECT_TIMEOUT_MS = 10_000
#: Interval between hello retries while joining, ms.
HELLO_RETRY_MS = 50
#: How long a blocked send waits before raising TransportTimeout, ms.
SEND_TIMEOUT_MS = 5000
#: How long close() lets queued outgoing messages drain, ms.
LINGER_MS = 500
#: ZMTP heartbeat: ping interval and the silence after which a peer is dropped, ms. The
#: timeout is long: a relay saturated by a flood answers pings late, and a dropped connection
#: loses the messages in flight on it (dead agents are found by the DSO's phase deadlines
#: and a dead DSO by the prosumers' silence limit, not by this).
HEARTBEAT_INTERVAL_MS = 1000
HEARTBEAT_TIMEOUT_MS = 30_000
#: How often the relay loop checks its stop flag when idle, ms.
RELAY_POLL_MS = 50
#: High-water mark of every socket (0: unbounded, never drop).
QUEUE_HWM_MSGS = 0
#: Socket events that end a connection's handshake unsuccessfully.
HANDSHAKE_FAILED_EVENTS = (
    zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)

#: Counter kind of batch frames (their messages count under their own kinds).
BATCH_KIND = "Batch"
TOPIC_END = b"\x00"
BROADCAST = BROADCAST_TO
BROADCAST_TOPIC = BROADCAST + TOPIC_END
TO_RELAY = b""
HELLO = b"hello"
WELCOME = b"welcome"
BYE = b"bye"


def _configure(socket: zmq.Socket) -> zmq.Socket:
    socket.linger = LINGER_MS
    socket.maxmsgsize = MAX_FRAME_BYTES
    socket.sndhwm = QUEUE_HWM_MSGS
    socket.rcvhwm = QUEUE_HWM_MSGS
    socket.heartbeat_ivl = HEARTBEAT_INTERVAL_MS
    socket.heartbeat_timeout = HEARTBEAT_TIMEOUT_MS
    return socket


@dataclass
class RelayStats:
    """What the relay did: forwarded, dropped and refused messages, joins."""

    directed: int = 0
    published: int = 0
    dropped_unknown_recipient: int = 0
    refused_unauthenticated: int = 0
    refused_subscriptions: int = 0
    malformed: int = 0
    joins: int = 0
    leaves: int = 0
    #: Upstream connections ended (agents leaving, and senders of oversized frames).
    disconnects: int = 0
    #: Failed handshakes: CURVE authentication refused, wrong server key, not ZMTP.
    handshake_failures: int = 0
    #: Frames refused because their origin is the batch marker (no agent may send as it).
    refused_origin: int = 0
    #: Batch frames released (each carries several held broadcasts, counted in ``published``).
    batches: int = 0
    #: Bundle frames received (each carries several messages, counted where they went).
    bundles: int = 0


class _Hold:
    """Messages held for one topic, to go as one batch frame, and the batch's size bound."""

    __slots__ = ("items", "size")

    def __init__(self) -> None:
        self.items: list[tuple[bytes, bytes]] = []
        self.size = EMPTY_BATCH_BYTES


class Relay:
    """Message router between agents: ROUTER in, PUB out (see the module docstring).

    Binds on construction, so :attr:`endpoints` holds the resolved addresses (free tcp
    ports picked). With ``keys`` its sockets are CURVE servers that admit only the store's
    agents (only ``agents`` when given: the run's own); binding tcp beyond loopback without
    keys raises :class:`SecurityError`. Run it with :meth:`serve` (blocking) or
    :meth:`start` (a daemon thread), end it with :meth:`close`.

    With a ``clock`` (an agent id: the deployment's DSO) the relay holds every broadcast and
    every message between peers (not those to or from the clock), per topic, and releases
    them in arrival order when the clock's next frame arrives: the peers' directed messages
    first, then the clock's own messages, the broadcasts (the peers' and the clock's) at the
    end of the clock's frame or just before a directed message of the clock. What is held
    for a topic goes as one batch frame (:mod:`messaging.batch`), or alone when only one
    message is held; a batch that would exceed the frame limit is released early. Every
    message a peer sends before the clock's frame thus reaches its recipients before the
    clock's messages, in one frame per recipient and topic; a peer's directed message may
    overtake its earlier broadcasts.

    With ``local`` (a name) and no keys the relay also binds in-process endpoints
    (:attr:`local_endpoints`): an agent of the relay's own process connects there through
    the relay's context, and its messages skip the sockets and I/O threads of the others.
    """

    def __init__(
        self,
        endpoints: RelayEndpoints,
        *,
        keys: KeyStore | None = None,
        agents: Iterable[str] | None = None,
        context: zmq.Context | None = None,
        clock: str | None = None,
        local: str | None = None,
    ) -> None:
        if keys is None and not endpoints.is_loopback:
            raise SecurityError(
                f"endpoints {endpoints.upstream}, {endpoints.downstream}: tcp beyond loopback "
                "needs CURVE keys (p2pvar keys init)"
            )
        self.context = context or zmq.Context.instance()
        self.stats = RelayStats()
        self.members: set[bytes] = set()
        self._secure = keys is not None
        self._clock = None if clock is None else clock.encode("ascii")
        #: Messages held for the clock's next frame, per topic (in the order first held).
        self._held: dict[bytes, _Hold] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._auth: KeyStoreAuthenticator | None = None
        self._monitors: list[zmq.Socket] = []
        if keys is not None:
            from messaging.authenticator import KeyStoreAuthenticator

            self._auth = KeyStoreAuthenticator(self.context, keys, agents)
            self._auth.start()
        self._router = _configure(self.context.socket(zmq.ROUTER))
        self._router.router_handover = False  # an id in use is refused, never taken over
        self._pub = _configure(self.context.socket(zmq.XPUB if self._secure else zmq.PUB))
        if self._secure:  # the relay decides which topics each authenticated agent may read
            self._pub.xpub_manual = True
        try:
            self._monitors = [
                self._router.get_monitor_socket(zmq.EVENT_DISCONNECTED | HANDSHAKE_FAILED_EVENTS),
                self._pub.get_monitor_socket(HANDSHAKE_FAILED_EVENTS),
            ]
            for socket, address in (
                (self._router, endpoints.upstream),
                (self._pub, endpoints.downstream),
            ):
                if keys is not None:
                    make_server(socket, keys)
                socket.bind(address)
        except zmq.ZMQError as exc:
            self.close()
            raise TransportError(f"relay bind: {exc}") from None
        self.endpoints = RelayEndpoints(_last_endpoint(self._router), _last_endpoint(self._pub))
        #: In-process endpoints (``local``, without keys) for an agent in the relay's process.
        self.local_endpoints: RelayEndpoints | None = None
        if local is not None and keys is None:
            self.local_endpoints = RelayEndpoints.inproc(local)
            self._router.bind(self.local_endpoints.upstream)
            self._pub.bind(self.local_endpoints.downstream)

    def serve(self) -> None:
        """Forward messages until :meth:`stop` is called (from another thread)."""
        poller = zmq.Poller()
        router = self._router
        poller.register(router, zmq.POLLIN)
        if self._secure:
            poller.register(self._pub, zmq.POLLIN)
        for monitor in self._monitors:
            poller.register(monitor, zmq.POLLIN)
        copy = not self._secure  # frames keep their User-Id only as zmq.Frame objects
        while not self._stop.is_set():
            ready = dict(poller.poll(RELAY_POLL_MS))
            if len(ready) > 1 or router not in ready:
                self._side_events(ready)
            while router in ready:
                try:
                    frames = router.recv_multipart(zmq.NOBLOCK, copy=copy)
                except zmq.Again:
                    break
                self._route(frames)

    def _side_events(self, ready: dict) -> None:
        if self._pub in ready:
            self._filter_subscriptions()
        for monitor in self._monitors:
            while monitor in ready:
                try:
                    event = _monitor_event(monitor, zmq.NOBLOCK)
                except zmq.Again:
                    break
                if event == zmq.EVENT_DISCONNECTED:
                    self.stats.disconnects += 1
                elif event & HANDSHAKE_FAILED_EVENTS:
                    self.stats.handshake_failures += 1
                    log.warning("relay: a handshake failed (%s)", zmq.Event(event).name)

    def _filter_subscriptions(self) -> None:
        """Apply an agent's subscription only to its own topic or the broadcast topic."""
        while True:
            try:
                frame = self._pub.recv(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            data = frame.bytes
            if not data:
                continue
            subscribe, topic = data[0] == 1, data[1:]
            try:
                user = str(frame.get("User-Id")).encode("utf-8", "replace")
            except zmq.ZMQError:  # libzmq's own unsubscribe for a closed connection
                continue
            if not subscribe:
                self._pub.unsubscribe(topic)
            elif topic in (BROADCAST_TOPIC, user + TOPIC_END):
                self._pub.subscribe(topic)
            else:
                self.stats.refused_subscriptions += 1
                log.warning("relay: refused %r a subscription to %r", user, topic)

    def _route(self, frames: list[Any]) -> None:
        if len(frames) != 3:
            self.stats.malformed += 1
            return
        if self._secure:
            try:
                user_id = frames[1].get("User-Id")
            except zmq.ZMQError:
                user_id = None
            frames = [f.bytes for f in frames]
            if user_id != frames[0].decode("utf-8", "replace"):
                self.stats.refused_unauthenticated += 1
                log.warning("relay: refused frames from %r authenticated as %r", frames[0], user_id)
                return
        origin, to, body = frames
        if origin == BATCH_ORIGIN:  # receivers would take its broadcasts for a batch
            self.stats.refused_origin += 1
            return
        from_clock = origin == self._clock
        if from_clock:  # the peers' directed messages go ahead of the clock's
            self._release(directed_only=True)
        if to == BUNDLE_TO:
            try:
                items = unpack_bundle(body)
            except MalformedFrame:
                self.stats.malformed += 1
                return
            self.stats.bundles += 1
            for item_to, item_body in items:
                self._route_one(origin, item_to, item_body)
        else:
            self._route_one(origin, to, body)
        if from_clock:
            self._release()

    def _route_one(self, origin: bytes, to: bytes, body: bytes) -> None:
        """Route one message (alone or an item of a bundle) from ``origin``."""
        clock = self._clock
        if clock is not None and to != TO_RELAY:
            if to == BROADCAST:
                self._hold(BROADCAST_TOPIC, origin, body)
                return
            if origin == clock:  # after the broadcasts held before it
                self._release()
            elif to != clock and to in self.members:
                self._hold(to + TOPIC_END, origin, body)
                return
        if to == BROADCAST:
            self._forward(BROADCAST_TOPIC, origin, body)
        elif to == TO_RELAY:
            self._control(origin, body)
        elif to in self.members:
            self._forward(to + TOPIC_END, origin, body)
        else:
            self.stats.dropped_unknown_recipient += 1
            log.warning("relay: dropped a message from %r to unknown %r", origin, to)

    def _forward(self, topic: bytes, origin: bytes, body: bytes) -> None:
        """Forward one message in a frame of its own."""
        self._pub.send_multipart([topic, origin, body])
        self._count_forwarded(topic, 1)

    def _count_forwarded(self, topic: bytes, n: int) -> None:
        if topic == BROADCAST_TOPIC:
            self.stats.published += n
        else:
            self.stats.directed += n

    @property
    def held_broadcasts(self) -> int:
        """Broadcasts held for the clock's next frame."""
        hold = self._held.get(BROADCAST_TOPIC)
        return 0 if hold is None else len(hold.items)

    @property
    def held_directed(self) -> int:
        """Directed messages held for the clock's next frame."""
        return sum(len(h.items) for t, h in self._held.items() if t != BROADCAST_TOPIC)

    def _hold(self, topic: bytes, origin: bytes, body: bytes) -> None:
        """Hold a message for ``topic`` until the clock's next frame (see the class docstring)."""
        size = item_bytes(origin, body)
        hold = self._held.get(topic)
        if hold is not None and hold.size + size > MAX_FRAME_BYTES:
            self._release_topic(topic)  # the batch is full
            hold = None
        if EMPTY_BATCH_BYTES + size > MAX_FRAME_BYTES:  # too large to share a batch
            self._release_topic(topic)
            self._forward(topic, origin, body)
            return
        if hold is None:
            hold = self._held[topic] = _Hold()
        hold.items.append((origin, body))
        hold.size += size

    def _release(self, *, directed_only: bool = False) -> None:
        """Forward what is held, per topic: one batch frame, or the frame alone if only one."""
        for topic in list(self._held):
            if not (directed_only and topic == BROADCAST_TOPIC):
                self._release_topic(topic)

    def _release_topic(self, topic: bytes) -> None:
        hold = self._held.pop(topic, None)
        if hold is None:
            return
        if len(hold.items) == 1:
            self._forward(topic, *hold.items[0])
            return
        self._pub.send_multipart([topic, BATCH_ORIGIN, pack_batch(hold.items)])
        self.stats.batches += 1
        self._count_forwarded(topic, len(hold.items))

    def _control(self, origin: bytes, verb: bytes) -> None:
        if verb == HELLO:
            if origin not in self.members:
                self.members.add(origin)
                self.stats.joins += 1
            self._pub.send_multipart([origin + TOPIC_END, TO_RELAY, WELCOME])
        elif verb == BYE and origin in self.members:
            self.members.discard(origin)
            self.stats.leaves += 1
        else:
            self.stats.malformed += 1

    def start(self) -> Relay:
        """Run :meth:`serve` in a daemon thread; return ``self``."""
        self._thread = threading.Thread(target=self.serve, name="p2pvar-relay", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask :meth:`serve` to return."""
        self._stop.set()

    def close(self) -> None:
        """Stop, join the thread, close the sockets and the authenticator."""
        self.stop()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        for socket in (getattr(self, "_router", None), getattr(self, "_pub", None)):
            if socket is not None:
                with contextlib.suppress(zmq.ZMQError):
                    socket.disable_monitor()
                socket.close(LINGER_MS)
        for monitor in getattr(self, "_monitors", ()):
            monitor.close(0)
        self._monitors = []
        if self._auth is not None:
            self._auth.stop()
            self._auth = None

    def __enter__(self) -> Relay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ZmqTransport:
    """One agent's :class:`messaging.transport.Transport` over a :class:`Relay`.

    Joins on construction (raises :class:`TransportTimeout` if the relay does not answer
    within ``connect_timeout_ms``). Not thread-safe: use it from one thread. For
    ``inproc://`` pass the relay's ``context``. With ``keys`` it authenticates as
    ``agent_id`` with that agent's key pair. ``broadcasts=False``: receive only messages
    directed to this agent (the deployment's DSO needs none of the peers' broadcasts).
    ``bundle_sends=True``: :meth:`send` and :meth:`publish` check and encode at once but queue
    the frame; the queue goes to the relay as one bundle frame (:mod:`messaging.batch`) at
    the next :meth:`recv` that may wait (a timeout other than 0), :meth:`flush` or
    :meth:`close`.
    """

    def __init__(
        self,
        agent_id: str,
        endpoints: RelayEndpoints,
        *,
        keys: KeyStore | None = None,
        context: zmq.Context | None = None,
        connect_timeout_ms: int = CONNECT_TIMEOUT_MS,
        broadcasts: bool = True,
        bundle_sends: bool = False,
    ) -> None:
        if type(agent_id) is not str or not AGENT_ID_PATTERN.fullmatch(agent_id):
            raise TransportError(f"agent_id={agent_id!r}: not a valid agent id")
        self.agent_id = agent_id
        self.counters = Counters(agent_id)
        self._id = agent_id.encode("ascii")
        self._closed = False
        self._rcvtimeo = -1
        self._recipients: dict[str, bytes] = {}
        self._muted: set[bytes] = set()
        #: ``(topic, origin, frame)`` items of a received batch not handed out yet.
        self._batched: deque[tuple[bytes, bytes, bytes]] = deque()
        self._topic = self._id + TOPIC_END
        #: ``(to, frame)`` items sent but not flushed yet (``bundle_sends``), and their size.
        self._bundle_sends = bundle_sends
        self._outbox: list[tuple[bytes, bytes]] = []
        self._outbox_bytes = EMPTY_BATCH_BYTES
        context = context or zmq.Context.instance()
        self._dealer = _configure(context.socket(zmq.DEALER))
        self._dealer.routing_id = self._id
        self._dealer.sndtimeo = SEND_TIMEOUT_MS
        self._dealer.immediate = True  # queue only on a live (authenticated) connection
        self._sub = _configure(context.socket(zmq.SUB))
        #: Connections to the relay dropped after joining (messages in flight may be lost).
        self.link_drops = 0
        self._monitor = self._sub.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        try:
            if keys is not None:
                make_client(self._dealer, keys, agent_id)
                make_client(self._sub, keys, agent_id)
            if broadcasts:
                self._sub.subscribe(BROADCAST_TOPIC)
            self._sub.subscribe(self._id + TOPIC_END)
            self._sub.connect(endpoints.downstream)
            self._dealer.connect(endpoints.upstream)
            self._join(connect_timeout_ms)
        except (zmq.ZMQError, MessagingError) as exc:
            self._close_sockets()
            self._closed = True
            if isinstance(exc, MessagingError):
                raise
            raise TransportError(f"{agent_id} connect: {exc}") from None

    def _join(self, timeout_ms: int) -> None:
        deadline = time.monotonic() + timeout_ms / 1000
        while time.monotonic() < deadline:
            with contextlib.suppress(zmq.Again):  # not connected yet (immediate mode)
                self._dealer.send_multipart([TO_RELAY, HELLO], zmq.NOBLOCK)
            if self._sub.poll(HELLO_RETRY_MS):
                frames = self._sub.recv_multipart()
                if frames[1:] == [TO_RELAY, WELCOME]:
                    self._drain_monitor()  # drops before the welcome lost nothing
                    self.link_drops = 0
                    return
        raise TransportTimeout(f"{self.agent_id}: no welcome from the relay in {timeout_ms} ms")

    def _check_open(self) -> None:
        if self._closed:
            raise TransportClosed(f"endpoint {self.agent_id!r} is closed")

    def _recipient(self, to: str) -> bytes:
        target = self._recipients.get(to)
        if target is None:
            if type(to) is not str or not AGENT_ID_PATTERN.fullmatch(to):
                raise TransportError(f"to={to!r}: not a valid agent id")
            target = self._recipients[to] = to.encode("ascii")
        return target

    def _send(self, target: bytes, msg: Message) -> None:
        self._check_open()
        check_own_sender(self.agent_id, msg)
        frame = encode(msg)
        if self._bundle_sends:
            size = item_bytes(target, frame)
            if self._outbox_bytes + size > MAX_FRAME_BYTES:
                self.flush()  # the bundle is full (a frame too large to share one goes alone)
            self._outbox.append((target, frame))
            self._outbox_bytes += size
        else:
            self._write([target, frame], msg.kind)
        self.counters.count_sent(msg.kind, len(frame))

    def _write(self, frames: list[bytes], what: str) -> None:
        try:
            self._dealer.send_multipart(frames)
        except zmq.Again:
            raise TransportTimeout(
                f"{self.agent_id}: send of {what} blocked for {SEND_TIMEOUT_MS} ms"
            ) from None

    @property
    def buffered(self) -> int:
        """Messages of a received batch not handed out yet (:meth:`next_buffered`)."""
        return len(self._batched)

    def next_buffered(self) -> Message | None:
        """The next message of a received batch, checked as :meth:`recv` checks it (``None``:
        an item to skip, such as this agent's own publish); :meth:`buffered` must be > 0."""
        return self._accept_message(*self._batched.popleft(), framed=False)

    @property
    def pending(self) -> int:
        """Messages queued by ``bundle_sends`` and not sent yet."""
        return len(self._outbox)

    def flush(self) -> None:
        """Send what ``bundle_sends`` queued: one frame alone, several as one bundle."""
        outbox = self._outbox
        if not outbox:
            return
        self._outbox = []
        self._outbox_bytes = EMPTY_BATCH_BYTES
        if len(outbox) == 1:
            self._write(list(outbox[0]), "a message")
        else:
            self._write([BUNDLE_TO, pack_batch(outbox)], f"a bundle of {len(outbox)} messages")

    def send(self, to: str, msg: Message) -> None:
        """Validate, encode and send ``msg`` to agent ``to`` through the relay."""
        self._send(self._recipient(to), msg)

    def publish(self, msg: Message) -> None:
        """Validate, encode and send ``msg`` to every other joined agent."""
        self._send(BROADCAST, msg)

    def recv(self, timeout_ms: int | None = NO_WAIT) -> Message | None:
        """Next validated message, or ``None`` after ``timeout_ms`` (``None``: wait forever).

        A refused message raises a :class:`RejectedMessage` subclass (counted, with
        ``origin`` set to the relay-stamped sender); the next call goes on. The messages of a
        batch frame (:mod:`messaging.batch`) come one per call, each checked as if alone.
        """
        self._check_open()
        if self._outbox and timeout_ms != 0:  # never wait with messages unsent
            self.flush()
        batched = self._batched
        budget = timeout = -1 if timeout_ms is None else timeout_ms
        start = time.monotonic()
        while True:
            while batched:
                msg = self.next_buffered()
                if msg is not None:
                    return msg
            if timeout != self._rcvtimeo:
                self._sub.rcvtimeo = self._rcvtimeo = timeout
            try:
                frames = self._sub.recv_multipart()
            except zmq.Again:
                return None
            msg = self._accept(frames)
            if msg is not None:
                return msg
            if timeout > 0:  # skipped a control frame or our own publish: wait what is left
                timeout = max(0, budget - math.ceil((time.monotonic() - start) * 1000))

    def mute(self, agent_id: str) -> None:
        """Drop frames relay-stamped as from ``agent_id`` without decoding them (refused)."""
        self._muted.add(agent_id.encode("utf-8", "replace"))

    def unmute_all(self) -> None:
        """Accept every sender again."""
        self._muted.clear()

    def _drain_monitor(self) -> None:
        """Count the downstream connection's drops noticed since the last look."""
        monitor = self._monitor
        while cast(int, monitor.get(zmq.EVENTS)) & zmq.POLLIN:  # cheaper than a refused recv
            _monitor_event(monitor)
            self.link_drops += 1

    def take_link_drops(self) -> int:
        """Drops of the downstream connection since the last call."""
        self._drain_monitor()
        drops, self.link_drops = self.link_drops, 0
        return drops

    def _accept(self, frames: list[bytes]) -> Message | None:
        if len(frames) != 3:
            self.counters.count_rejected(None, sum(len(f) for f in frames))
            raise MalformedFrame(f"frames: {len(frames)} from the relay (expected 3)")
        topic, origin, body = frames
        if origin == BATCH_ORIGIN and (topic == BROADCAST_TOPIC or topic == self._topic):
            try:
                self._batched.extend((topic, *item) for item in unpack_batch(body))
            except MalformedFrame:
                self.counters.count_rejected(BATCH_KIND, len(body))
                raise
            self.counters.count_frame(BATCH_KIND)
            return None
        return self._accept_message(topic, origin, body, framed=True)

    def _accept_message(
        self, topic: bytes, origin: bytes, body: bytes, *, framed: bool
    ) -> Message | None:
        """One message (``framed``: a frame of its own, else an item of a batch)."""
        if origin == TO_RELAY or (origin == self._id and topic == BROADCAST_TOPIC):
            return None  # a repeated welcome, or our own publish
        if origin in self._muted:
            self.counters.count_rejected(None, len(body), framed=framed)
            raise SenderMuted(
                f"frames from muted sender {origin!r}", origin=origin.decode("utf-8", "replace")
            )
        sender = origin.decode("utf-8", "replace")
        try:
            send_ns, msg = _decode_any(body)
            if msg.sender != sender:
                raise sender_mismatch(msg, f"frames come from {sender!r}")
        except RejectedMessage as exc:
            exc.origin = sender
            self.counters.count_rejected(exc.kind, len(body), framed=framed)
            raise
        self.counters.count_received(msg.kind, len(body), time.time_ns() - send_ns, framed=framed)
        return msg

    def _close_sockets(self) -> None:
        with contextlib.suppress(zmq.ZMQError):
            self._sub.disable_monitor()
        self._monitor.close(0)
        self._dealer.close(LINGER_MS)
        self._sub.close(LINGER_MS)

    def close(self) -> None:
        """Tell the relay we leave, then close both sockets (lingering ``LINGER_MS``)."""
        if self._closed:
            return
        with contextlib.suppress(zmq.ZMQError, TransportTimeout):
            self.flush()
        self._closed = True
        with contextlib.suppress(zmq.ZMQError):
            self._dealer.send_multipart([TO_RELAY, BYE], zmq.NOBLOCK)
        self._close_sockets()

    def __enter__(self) -> ZmqTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _decode_any(body: bytes) -> tuple[int, Message]:
    """:func:`decode_frame`, with any unexpected failure refused as a malformed frame.

    Nothing that arrives on the wire may end the receiving process.
    """
    try:
        return decode_frame(body)
    except RejectedMessage:
        raise
    except Exception as exc:
        raise MalformedFrame(f"frame: cannot be decoded ({type(exc).__name__})") from None


def _monitor_event(monitor: zmq.Socket, flags: int = 0) -> int:
    """The event id of the next message on a monitor socket: its first frame holds a 16-bit
    event id and a 32-bit value (``zmq.utils.monitor`` reads it the same way, but imports
    asyncio, which no agent process needs)."""
    frame = monitor.recv_multipart(flags)[0]
    return int(struct.unpack("=hi", frame)[0])


def run_relay(
    endpoints: RelayEndpoints, keys: KeyStore | None = None, ready: Connection | None = None
) -> RelayStats:
    """Process entry point: bind a relay, send its resolved endpoints to ``ready``, serve.

    Serves until SIGTERM or SIGINT, then closes cleanly and returns the relay's stats.
    """
    relay = Relay(endpoints, keys=keys)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: relay.stop())
    if ready is not None:
        ready.send(relay.endpoints)
    try:
        relay.serve()
    finally:
        relay.close()
    return relay.stats


def _last_endpoint(socket: zmq.Socket) -> str:
    """The endpoint ``socket`` last bound to (resolved port of a ``tcp://*:0`` bind)."""
    value = socket.getsockopt(zmq.LAST_ENDPOINT)
    return value.decode() if isinstance(value, bytes) else str(value)
