"""Eight agent OS processes over ipc: no loss, per-sender order, clean exit."""

from __future__ import annotations

import multiprocessing
from typing import TypeVar

from messaging.messages import Heartbeat, Join, Leave, Message, Phase
from messaging.zmq_transport import ZmqTransport
from tests.messaging import mp_workers
from tests.messaging.zmq_helpers import connect, running_relay

N_AGENTS = 8
ROUNDS = 25
JOIN_MS = 60_000
EXIT_TIMEOUT_S = 30

M = TypeVar("M", bound=Message)


def test_eight_processes_exchange_without_loss() -> None:
    ctx = multiprocessing.get_context("spawn")
    peers = [f"p{i:02d}" for i in range(N_AGENTS)]
    with running_relay("ipc") as relay, connect(relay, mp_workers.COORDINATOR) as coord:
        procs = [
            ctx.Process(
                target=mp_workers.run_agent,
                args=(p, relay.endpoints, peers, ROUNDS),
                name=p,
                daemon=True,
            )
            for p in peers
        ]
        try:
            for proc in procs:
                proc.start()
            joined = {_expect(coord, Join).sender for _ in peers}
            assert joined == set(peers)
            coord.publish(Phase(mp_workers.COORDINATOR, 0, 1, "orders"))
            reports, heartbeats = {}, 0
            while len(reports) < N_AGENTS:
                msg = _expect(coord, (Leave, Heartbeat))
                if isinstance(msg, Leave):
                    reports[msg.sender] = msg.reason
                else:
                    heartbeats += 1
            assert heartbeats == N_AGENTS * ROUNDS  # the coordinator hears every publish
            assert reports == {p: f"bids={(N_AGENTS - 1) * ROUNDS}" for p in peers}
            for proc in procs:
                proc.join(EXIT_TIMEOUT_S)
            assert [proc.exitcode for proc in procs] == [0] * N_AGENTS
        finally:
            for proc in procs:
                if proc.is_alive():
                    proc.kill()
                    proc.join(EXIT_TIMEOUT_S)
        exchanged = N_AGENTS * ROUNDS * N_AGENTS  # each round: n-1 directed + 1 publish each
        joins_leaves_start = 2 * N_AGENTS + 1
        assert relay.stats.directed + relay.stats.published == exchanged + joins_leaves_start
        assert relay.stats.dropped_unknown_recipient == 0


def _expect(coord: ZmqTransport, kind: type[M] | tuple[type[M], ...]) -> M:
    msg = coord.recv(JOIN_MS)
    assert isinstance(msg, kind), msg
    return msg
