"""``p2pvar bench messaging``: cost of the messaging layer beside bare pyzmq + msgpack.

Every figure of the layer is measured in the same run beside a baseline doing the same
work with bare pyzmq and msgpack over the same topology (agent DEALER -> relay ROUTER ->
relay PUB -> agent SUB; relay and peers in their own processes for ipc and tcp, threads
for inproc). Both setups run at the same time and are measured alternately. What the
layer adds: validation, the header with kind, version and send stamp, counters, the
endpoint logic (origin check, skipping its own publishes) and the relay's membership.

* round trip: a client sends a small ``Bid`` to an echo agent and waits for its answer
  (``--round-trips`` per setup in alternating blocks; medians; the overhead ratio is the
  median of per-block ratios), per transport; plus a direct DEALER/ROUTER pair with no
  relay (``direct_rtt_us_ipc``), for the relay's cost;
* stream: one agent sends ``--stream-msgs`` messages to another (msgs/s, ipc);
* fan-in: ``--fanin-procs`` processes each send ``--fanin-msgs`` messages to one sink
  (msgs/s at the sink, ipc);
* in-process: the in-memory bus per message (send + recv, validation and byte counting
  included) beside a bare ``deque``.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import statistics
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from typing import Any

import msgpack
import zmq

from abm.bench.timing import median_us
from abm.cli.commands.output import emit
from abm.errors import ConfigError
from messaging.endpoints import RelayEndpoints
from messaging.memory import InMemoryBus
from messaging.messages import Bid, Heartbeat, Join, Leave, Phase
from messaging.zmq_transport import (
    BROADCAST,
    BROADCAST_TOPIC,
    LINGER_MS,
    RELAY_POLL_MS,
    TOPIC_END,
    Relay,
    ZmqTransport,
    run_relay,
)

SCHEMES = ("inproc", "ipc", "tcp")
#: Bound of every wait of a benchmark peer, ms; a peer that waits longer fails the run.
PEER_WAIT_MS = 30_000
#: How long a peer or relay process may take to exit once told to, s.
JOIN_TIMEOUT_S = 10.0
#: Untimed round trips before each timed block.
WARMUP_ROUND_TRIPS = 100
#: Interval between a bare peer's self-addressed sync messages while it joins, ms.
SYNC_RETRY_MS = 50
#: Alternating timed blocks of round trips per setup (layer and baseline take turns).
RTT_BLOCKS = 10
#: Alternating streams per setup.
STREAM_REPEATS = 3
INMEM_MSGS = 50_000
ECHO, CLIENT, SINK = "echo", "client", "sink"
#: ``Leave.reason`` / bare tags of the benchmark's little protocol.
END_OF_STREAM, STOP = "eos", "stop"

_spawn = multiprocessing.get_context("spawn")


# ----------------------------------------------------------------- bare pyzmq + msgpack
class BareRelay:
    """The relay's forwarding without the layer: ROUTER in, PUB out on ``<to>\\0`` topics."""

    def __init__(self, endpoints: RelayEndpoints, context: zmq.Context | None = None) -> None:
        self.context = context or zmq.Context.instance()
        self._router = self.context.socket(zmq.ROUTER)
        self._pub = self.context.socket(zmq.PUB)
        for sock, address in (
            (self._router, endpoints.upstream),
            (self._pub, endpoints.downstream),
        ):
            sock.linger = LINGER_MS
            sock.sndhwm = sock.rcvhwm = 0
            sock.bind(address)
        self.endpoints = RelayEndpoints(
            self._router.last_endpoint.decode(), self._pub.last_endpoint.decode()
        )
        self._stop = threading.Event()

    def serve(self) -> None:
        """Forward until :meth:`stop`."""
        router, pub = self._router, self._pub
        router.rcvtimeo = RELAY_POLL_MS
        while not self._stop.is_set():
            try:
                origin, to, body = router.recv_multipart()
            except zmq.Again:
                continue
            pub.send_multipart(
                [BROADCAST_TOPIC if to == BROADCAST else to + TOPIC_END, origin, body]
            )

    def stop(self) -> None:
        """Ask :meth:`serve` to return."""
        self._stop.set()

    def close(self) -> None:
        """Close both sockets."""
        self._router.close(LINGER_MS)
        self._pub.close(LINGER_MS)


def run_bare_relay(endpoints: RelayEndpoints, keys: None, ready: Connection) -> None:
    """Process entry point of :class:`BareRelay` (same signature as ``run_relay``)."""
    import signal

    relay = BareRelay(endpoints)
    signal.signal(signal.SIGTERM, lambda *_: relay.stop())
    ready.send(relay.endpoints)
    try:
        relay.serve()
    finally:
        relay.close()


class BarePeer:
    """An agent with bare sockets: DEALER to the relay, SUB on its topic and broadcasts."""

    def __init__(
        self, agent_id: str, endpoints: RelayEndpoints, context: zmq.Context | None = None
    ) -> None:
        context = context or zmq.Context.instance()
        self.id = agent_id.encode()
        self.dealer = context.socket(zmq.DEALER)
        self.dealer.routing_id = self.id
        self.sub = context.socket(zmq.SUB)
        for sock in (self.dealer, self.sub):
            sock.linger = LINGER_MS
            sock.sndhwm = sock.rcvhwm = 0
        self.sub.rcvtimeo = PEER_WAIT_MS
        self.sub.subscribe(BROADCAST_TOPIC)
        self.sub.subscribe(self.id + TOPIC_END)
        self.sub.connect(endpoints.downstream)
        self.dealer.connect(endpoints.upstream)
        while not self.sub.poll(SYNC_RETRY_MS):  # joined once a message to ourselves is back
            self.dealer.send_multipart([self.id, msgpack.packb(["sync"])])

    def send(self, to: str, values: list[Any]) -> None:
        """msgpack ``values`` and send them to ``to``."""
        self.dealer.send_multipart([to.encode(), msgpack.packb(values)])

    def publish(self, values: list[Any]) -> None:
        """msgpack ``values`` and send them to everybody."""
        self.dealer.send_multipart([BROADCAST, msgpack.packb(values)])

    def recv(self) -> tuple[str, list[Any]]:
        """Next ``(origin, values)`` from another agent; raise after ``PEER_WAIT_MS``."""
        while True:
            try:
                _, origin, payload = self.sub.recv_multipart()
            except zmq.Again:
                raise TimeoutError(f"{self.id!r}: nothing within {PEER_WAIT_MS} ms") from None
            if origin != self.id:  # skip our syncs and our own publishes
                return origin.decode(), msgpack.unpackb(payload)

    def close(self) -> None:
        """Close both sockets."""
        self.dealer.close(LINGER_MS)
        self.sub.close(LINGER_MS)


# ------------------------------------------------------------------------- peers
def layer_echo(endpoints: RelayEndpoints, context: zmq.Context | None = None) -> None:
    """Answer each Bid with a Bid; count Heartbeats until end of stream; stop on ``stop``."""
    with ZmqTransport(ECHO, endpoints, context=context, connect_timeout_ms=PEER_WAIT_MS) as t:
        t.send(CLIENT, Join(ECHO, 0, 0))
        seq, streamed = 0, 0
        while True:
            msg = t.recv(PEER_WAIT_MS)
            if msg is None:
                raise TimeoutError(f"{ECHO}: nothing within {PEER_WAIT_MS} ms")
            seq += 1
            if isinstance(msg, Bid):
                t.send(msg.sender, Bid(ECHO, 0, seq, msg.quantity_kwh, 0.2))
            elif isinstance(msg, Heartbeat):
                streamed += 1
            elif isinstance(msg, Leave) and msg.reason == END_OF_STREAM:
                t.send(msg.sender, Leave(ECHO, 0, seq, str(streamed)))
                streamed = 0
            elif isinstance(msg, Leave):
                return


def bare_echo(endpoints: RelayEndpoints, context: zmq.Context | None = None) -> None:
    """The same echo with bare sockets and msgpack lists."""
    peer = BarePeer(ECHO, endpoints, context)
    try:
        peer.send(CLIENT, ["join", ECHO, 0, 0, "prosumer", -1])
        streamed = 0
        while True:
            origin, values = peer.recv()
            tag = values[0]
            if tag == "bid":
                peer.send(origin, ["bid", ECHO, 0, values[3], values[4], 0.2])
            elif tag == "hb":
                streamed += 1
            elif tag == END_OF_STREAM:
                peer.send(origin, ["leave", ECHO, 0, 0, str(streamed)])
                streamed = 0
            else:
                return
    finally:
        peer.close()


def layer_sender(agent_id: str, endpoints: RelayEndpoints, n_msgs: int) -> None:
    """Fan-in peer: join the sink, wait for its phase, send ``n_msgs`` heartbeats, leave."""
    with ZmqTransport(agent_id, endpoints, connect_timeout_ms=PEER_WAIT_MS) as t:
        t.send(SINK, Join(agent_id, 0, 0))
        if not isinstance(t.recv(PEER_WAIT_MS), Phase):
            raise TimeoutError(f"{agent_id}: no start phase")
        for seq in range(1, n_msgs + 1):
            t.send(SINK, Heartbeat(agent_id, 0, seq))
        t.send(SINK, Leave(agent_id, 0, n_msgs + 1, "done"))


def bare_sender(agent_id: str, endpoints: RelayEndpoints, n_msgs: int) -> None:
    """The same fan-in peer with bare sockets."""
    peer = BarePeer(agent_id, endpoints)
    try:
        peer.send(SINK, ["join", agent_id, 0, 0, "prosumer", -1])
        peer.recv()
        for seq in range(1, n_msgs + 1):
            peer.send(SINK, ["hb", agent_id, 0, seq])
        peer.send(SINK, ["leave", agent_id, 0, n_msgs + 1, "done"])
    finally:
        peer.close()


# ------------------------------------------------------------------ process plumbing
@contextlib.contextmanager
def _running(target: Callable[..., Any], args: tuple, threaded: bool) -> Iterator[None]:
    """Run ``target`` in a thread (inproc) or a spawned process; make sure it ends."""
    runner: Any = (threading.Thread if threaded else _spawn.Process)(
        target=target, args=args, daemon=True
    )
    runner.start()
    try:
        yield
    finally:
        runner.join(JOIN_TIMEOUT_S)
        if not threaded and runner.is_alive():
            runner.kill()
            runner.join(JOIN_TIMEOUT_S)


@contextlib.contextmanager
def _relay(bare: bool, scheme: str) -> Iterator[tuple[RelayEndpoints, zmq.Context | None]]:
    """A relay (layer or bare) on ``scheme``; yields resolved endpoints and the context."""
    with tempfile.TemporaryDirectory(prefix="p2pvar-bench-") as folder:
        endpoints = {
            "inproc": lambda: RelayEndpoints.inproc(f"bench-{'bare' if bare else 'layer'}"),
            "ipc": lambda: RelayEndpoints.ipc(folder),
            "tcp": lambda: RelayEndpoints.tcp(),
        }[scheme]()
        if scheme == "inproc":
            context = zmq.Context()
            relay: Relay | BareRelay = (BareRelay if bare else Relay)(endpoints, context=context)
            thread = threading.Thread(target=relay.serve, daemon=True)
            thread.start()
            try:
                yield relay.endpoints, context
            finally:
                relay.stop()
                thread.join(JOIN_TIMEOUT_S)
                relay.close()
                context.destroy(linger=0)
            return
        parent, child = _spawn.Pipe()
        proc = _spawn.Process(
            target=run_bare_relay if bare else run_relay, args=(endpoints, None, child), daemon=True
        )
        proc.start()
        try:
            if not parent.poll(PEER_WAIT_MS / 1000):
                raise TimeoutError("relay process did not start")
            yield parent.recv(), None
        finally:
            proc.terminate()
            proc.join(JOIN_TIMEOUT_S)
            if proc.is_alive():
                proc.kill()
                proc.join(JOIN_TIMEOUT_S)


# ------------------------------------------------------------------------ measures
class _LayerClient:
    def __init__(self, endpoints: RelayEndpoints, context: zmq.Context | None) -> None:
        self.t = ZmqTransport(CLIENT, endpoints, context=context, connect_timeout_ms=PEER_WAIT_MS)
        self.seq = 0

    def _next(self) -> int:
        self.seq += 1
        return self.seq

    def wait_for_echo(self) -> None:
        if not isinstance(self.t.recv(PEER_WAIT_MS), Join):
            raise TimeoutError(f"{ECHO} did not join")

    def round_trips(self, n: int) -> list[int]:
        out = []
        t = self.t
        for _ in range(n):
            start = time.perf_counter_ns()
            t.send(ECHO, Bid(CLIENT, 0, self._next(), 1.5, 0.2))
            if t.recv(PEER_WAIT_MS) is None:
                raise TimeoutError("no echo")
            out.append(time.perf_counter_ns() - start)
        return out

    def stream(self, n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            self.t.send(ECHO, Heartbeat(CLIENT, 0, self._next()))
        self.t.send(ECHO, Leave(CLIENT, 0, self._next(), END_OF_STREAM))
        reply = self.t.recv(PEER_WAIT_MS)
        if not isinstance(reply, Leave) or reply.reason != str(n):
            raise RuntimeError(f"stream: echo reported {reply!r}, expected {n}")
        return n / (time.perf_counter() - start)

    def close(self) -> None:
        self.t.send(ECHO, Leave(CLIENT, 0, self._next(), STOP))
        self.t.close()


class _BareClient:
    def __init__(self, endpoints: RelayEndpoints, context: zmq.Context | None) -> None:
        self.peer = BarePeer(CLIENT, endpoints, context)
        self.seq = 0

    def wait_for_echo(self) -> None:
        self.peer.recv()

    def round_trips(self, n: int) -> list[int]:
        out = []
        peer = self.peer
        for _ in range(n):
            start = time.perf_counter_ns()
            self.seq += 1
            peer.send(ECHO, ["bid", CLIENT, 0, self.seq, 1.5, 0.2])
            peer.recv()
            out.append(time.perf_counter_ns() - start)
        return out

    def stream(self, n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            self.seq += 1
            self.peer.send(ECHO, ["hb", CLIENT, 0, self.seq])
        self.peer.send(ECHO, [END_OF_STREAM, CLIENT, 0, self.seq + 1, END_OF_STREAM])
        _, values = self.peer.recv()
        if values[4] != str(n):
            raise RuntimeError(f"stream: bare echo reported {values!r}, expected {n}")
        return n / (time.perf_counter() - start)

    def close(self) -> None:
        self.peer.send(ECHO, [STOP])
        self.peer.close()


@contextlib.contextmanager
def _echo_setup(bare: bool, scheme: str) -> Iterator[_LayerClient | _BareClient]:
    with _relay(bare, scheme) as (endpoints, context):
        echo = bare_echo if bare else layer_echo
        client = (_BareClient if bare else _LayerClient)(endpoints, context)
        with _running(echo, (endpoints, context), threaded=scheme == "inproc"):
            try:
                client.wait_for_echo()
                client.round_trips(WARMUP_ROUND_TRIPS)
                yield client
            finally:
                client.close()


def measure_transport(scheme: str, round_trips: int, stream_msgs: int) -> dict[str, float]:
    """Round trip (and stream throughput unless ``stream_msgs`` is 0), layer and baseline.

    Round trips run in ``RTT_BLOCKS`` blocks, layer and baseline taking turns; the
    overhead ratio is the median over blocks of (layer median / adjacent baseline median),
    which cancels slow drifts of a shared machine.
    """
    per_block = max(1, round_trips // RTT_BLOCKS)
    rtt: dict[bool, list[int]] = {False: [], True: []}
    ratios: list[float] = []
    rate: dict[bool, list[float]] = {False: [], True: []}
    with _echo_setup(False, scheme) as layer, _echo_setup(True, scheme) as bare:
        clients = {False: layer, True: bare}
        for block in range(RTT_BLOCKS):
            medians = {}
            for is_bare in (False, True) if block % 2 == 0 else (True, False):
                samples = clients[is_bare].round_trips(per_block)
                rtt[is_bare] += samples
                medians[is_bare] = statistics.median(samples)
            ratios.append(medians[False] / medians[True])
        for repeat in range(STREAM_REPEATS if stream_msgs else 0):
            for is_bare in (False, True) if repeat % 2 == 0 else (True, False):
                rate[is_bare].append(clients[is_bare].stream(stream_msgs))
    out = {
        f"rtt_us_{scheme}": median_us(rtt[False]),
        f"baseline_rtt_us_{scheme}": median_us(rtt[True]),
        f"overhead_ratio_{scheme}": statistics.median(ratios),
    }
    if stream_msgs:
        out[f"stream_msgs_per_s_{scheme}"] = statistics.median(rate[False])
        out[f"baseline_stream_msgs_per_s_{scheme}"] = statistics.median(rate[True])
    return out


def direct_echo(address: str, n: int) -> None:
    """Bare ROUTER answering ``n`` msgpack requests (peer of :func:`measure_direct_ipc`)."""
    context = zmq.Context()
    router = context.socket(zmq.ROUTER)
    router.linger = LINGER_MS
    router.bind(address)
    for _ in range(n):
        if not router.poll(PEER_WAIT_MS):
            break
        ident, payload = router.recv_multipart()
        router.send_multipart([ident, msgpack.packb(msgpack.unpackb(payload))])
    router.close()
    context.term()


def measure_direct_ipc(round_trips: int) -> float:
    """Median round trip (us) of a bare DEALER/ROUTER pair over ipc with no relay."""
    total = round_trips + WARMUP_ROUND_TRIPS
    with tempfile.TemporaryDirectory(prefix="p2pvar-bench-") as folder:
        address = f"ipc://{folder}/direct.sock"
        with _running(direct_echo, (address, total), threaded=False):
            context = zmq.Context()
            dealer = context.socket(zmq.DEALER)
            dealer.linger = 0
            dealer.connect(address)
            samples = []
            for i in range(total):
                start = time.perf_counter_ns()
                dealer.send(msgpack.packb(["bid", CLIENT, 0, i, 1.5, 0.2]))
                if not dealer.poll(PEER_WAIT_MS):
                    raise TimeoutError("direct echo: no answer")
                msgpack.unpackb(dealer.recv())
                samples.append(time.perf_counter_ns() - start)
            dealer.close()
            context.term()
    return median_us(samples[WARMUP_ROUND_TRIPS:])


def _fanin_next(sink: ZmqTransport | BarePeer) -> str:
    """Kind (layer) or tag (bare) of the sink's next message, lower case."""
    if isinstance(sink, BarePeer):
        return sink.recv()[1][0]
    msg = sink.recv(PEER_WAIT_MS)
    if msg is None:
        raise TimeoutError(f"{SINK}: nothing within {PEER_WAIT_MS} ms")
    return msg.kind.lower()


def measure_fanin(procs: int, msgs: int, bare: bool) -> float:
    """Messages per second arriving at one sink from ``procs`` sender processes (ipc)."""
    with _relay(bare, "ipc") as (endpoints, _):
        sink: ZmqTransport | BarePeer
        if bare:
            sink = BarePeer(SINK, endpoints)
        else:
            sink = ZmqTransport(SINK, endpoints, connect_timeout_ms=PEER_WAIT_MS)
        sender = bare_sender if bare else layer_sender
        try:
            with contextlib.ExitStack() as stack:
                for i in range(procs):
                    stack.enter_context(_running(sender, (f"s{i:03d}", endpoints, msgs), False))
                for _ in range(procs):
                    _fanin_next(sink)  # the senders' joins
                if isinstance(sink, BarePeer):
                    sink.publish(["go"])
                else:
                    sink.publish(Phase(SINK, 0, 1, "orders"))
                start = time.perf_counter()
                left, received = procs, 0
                while left:
                    is_leave = _fanin_next(sink) == "leave"
                    left -= is_leave
                    received += not is_leave
                elapsed = time.perf_counter() - start
                if received != procs * msgs:
                    raise RuntimeError(f"fan-in: {received} messages, expected {procs * msgs}")
        finally:
            sink.close()
    return procs * msgs / elapsed


def measure_inmemory(n_msgs: int = INMEM_MSGS) -> dict[str, float]:
    """In-memory bus send+recv per message (us) beside a bare deque append/popleft."""
    msgs = [Bid("a", 0, seq, 1.5, 0.2) for seq in range(n_msgs)]
    bus = InMemoryBus()
    a, b = bus.endpoint("a"), bus.endpoint("b")
    start = time.perf_counter()
    for msg in msgs:
        a.send("b", msg)
        b.recv()
    layer_s = time.perf_counter() - start
    queue: deque[Any] = deque()
    start = time.perf_counter()
    for msg in msgs:
        queue.append(msg)
        queue.popleft()
    bare_s = time.perf_counter() - start
    return {
        "inmem_us_per_msg": layer_s / n_msgs * 1e6,
        "baseline_inmem_us_per_msg": bare_s / n_msgs * 1e6,
        "inmem_msgs_per_s": n_msgs / layer_s,
    }


# ---------------------------------------------------------------------------- CLI
def register(sub: argparse._SubParsersAction) -> None:
    """Add ``bench messaging``."""
    parser = sub.add_parser(
        "messaging",
        help="messaging layer latency/throughput beside bare pyzmq + msgpack",
        description=__doc__.split("\n\n")[1],
    )
    parser.add_argument("--round-trips", type=int, default=2000, help="timed RTTs per block")
    parser.add_argument("--stream-msgs", type=int, default=20_000, help="messages per stream")
    parser.add_argument("--fanin-procs", type=int, default=8, help="fan-in sender processes")
    parser.add_argument("--fanin-msgs", type=int, default=2000, help="messages per sender")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run every measurement and print the figures."""
    for name in ("round_trips", "stream_msgs", "fanin_procs", "fanin_msgs"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')}={getattr(args, name)}: must be >= 1")
    result: dict[str, Any] = {}
    for scheme in SCHEMES:
        stream = 0 if scheme == "inproc" else args.stream_msgs
        result.update(measure_transport(scheme, args.round_trips, stream))
    result["direct_rtt_us_ipc"] = measure_direct_ipc(args.round_trips)
    result["fanin_procs"] = args.fanin_procs
    result["fanin_msgs_per_s"] = measure_fanin(args.fanin_procs, args.fanin_msgs, bare=False)
    result["baseline_fanin_msgs_per_s"] = measure_fanin(
        args.fanin_procs, args.fanin_msgs, bare=True
    )
    result.update(measure_inmemory())
    result["overhead_target"] = 1.3
    result["overhead_target_met_ipc"] = result["overhead_ratio_ipc"] <= 1.3
    emit(result, args.json, title="messaging benchmark (layer beside bare pyzmq + msgpack)")
    return 0
