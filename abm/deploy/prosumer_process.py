"""The main loop of a prosumer process: the sans-IO agent behind a ZeroMQ link.

The process sends the DSO its ``Join`` once the first message from the DSO has arrived (the
DSO publishes heartbeats while it waits): from then on the DSO is known to be connected to
the relay, so the ``Join`` cannot be lost. The loop feeds every accepted
message to :meth:`agents.prosumer.ProsumerAgent.handle` and sends what it returns; after
handling each ``Phase`` (but ``open`` and the script's silent ticks) it sends the DSO a
``PhaseAck`` of that tick so the DSO's clock can end the phase as soon as every live
prosumer is done; at ``schedule`` the prosumer's ``Schedule`` (its last message of the
phase) stands in for the ack. Before sending its ``Schedule`` the process records its row
as booked then (a ``scheduled`` record; again after each ``Absent`` that follows, which may
void a trade), so that if it dies before its ``Settlement`` arrives the merge can complete
the row from the DSO's records; its ``row`` record follows the ``Settlement``. Membership of an
interval is read from the DSO's envelopes: a prosumer takes part in interval ``t`` only if
its own row of the ``Envelopes`` table arrived after ``Phase(open, t)`` (the DSO's table
holds the rows of admitted prosumers only); otherwise it sits the interval out and sends
nothing. A ``Leave`` from the DSO means "absent for the rest of this interval": the loop
stops feeding the agent, answers with a ``Heartbeat`` (so the DSO knows it is alive and
re-admits it at the next ``open``) and waits. When its connection to the relay drops
(messages may have been lost) it sits out the interval and joins again. A gap in the DSO's
in-order stream (an ``open`` never seen, or an interval it took part in that ended with
neither its ``Settlement`` nor a ``Leave``) means messages were lost without a drop being
noticed: the process records the intervals hit (``gap`` records, the ``lost_intervals``
column of the ``processes`` table) and joins again, taking part afresh from the DSO's next
``open``. Handling errors
are refused and counted, never fatal. After ``dso_silence_ms`` without any message from
the DSO the process stops cleanly with :data:`EXIT_DSO_LOST`.
"""

from __future__ import annotations

import time

from abm.deploy.faults import Fault, FaultAction, apply_fault
from abm.deploy.lifecycle import (
    EXIT_DSO_LOST,
    EXIT_OK,
    EXIT_TERMINATED,
    Terminated,
)
from abm.deploy.link import AgentLink
from abm.deploy.records import RecordWriter, take_counters
from abm.deploy.spec import DSO_ID, RunSpec
from agents.outcome import ProsumerOutcome
from agents.prosumer import ProsumerAgent
from analysis.tables import outcome_row
from messaging.messages import (
    Absent,
    Heartbeat,
    Join,
    Leave,
    Message,
    Outgoing,
    Phase,
    PhaseAck,
    Schedule,
    Settlement,
)

#: Receive timeout of the loop, ms (bounds how late silence is noticed).
POLL_MS = 200
#: Hang: sleep in slices of this many seconds until killed.


class ProsumerLoop:
    """Drives one :class:`ProsumerAgent` from its link until ``Phase(close)`` or DSO silence."""

    def __init__(
        self,
        spec: RunSpec,
        agent: ProsumerAgent,
        link: AgentLink,
        writer: RecordWriter,
        fault: Fault | None = None,
    ) -> None:
        self.spec = spec
        self.agent = agent
        self.link = link
        self.writer = writer
        self.fault = fault
        self.agent_id = agent.agent_id
        self.script = spec.sim.interval_script()
        #: Whether this process takes part in the current interval (None: not known yet).
        self.member: bool | None = False
        self.interval = -1
        self.compute_s = 0.0
        self.row_written = -1
        #: The last interval whose ``Schedule`` this process sent.
        self.scheduled = -1
        #: Times the connection dropped and the process joined again.
        self.resyncs = 0
        #: Intervals in which DSO messages to this process were lost (gaps in the stream).
        self.lost_intervals: list[int] = []
        #: Until when (monotonic s) an injected ``drop`` fault discards what arrives.
        self.drop_until = 0.0

    def run(self) -> int:
        """Join, then handle messages until the run closes; return the exit status."""
        try:
            return self._run()
        except Terminated as exc:
            return self._stop(EXIT_TERMINATED, f"terminated by {exc}")

    def _run(self) -> int:
        link = self.link
        options = self.spec.options
        silence_s = options.join_timeout_ms / 1000  # until joined: the DSO may be starting
        last_dso = time.monotonic()
        joined = False
        while True:
            msg = link.receive(POLL_MS, self.agent.interval)
            if msg is None:
                if time.monotonic() - last_dso > silence_s:
                    return self._stop(EXIT_DSO_LOST, f"no message from the DSO for {silence_s} s")
                continue
            if self.drop_until and time.monotonic() < self.drop_until:  # an injected drop fault
                continue  # as if never delivered
            if msg.sender == DSO_ID:
                last_dso = time.monotonic()
                if not joined:  # the DSO is subscribed now: a Join cannot be lost
                    joined = True
                    silence_s = options.dso_silence_ms / 1000
                    self._join()
                elif isinstance(msg, Phase) and link.transport.take_link_drops():
                    self._resync()  # checked at each of the DSO's ticks
            if isinstance(msg, Phase) and msg.sender == DSO_ID:
                if msg.phase == "close":
                    self._check_stream(msg.interval + 1)
                    link.send(
                        DSO_ID,
                        Leave(self.agent_id, msg.interval, link.next_control_seq(), "closed"),
                    )
                    return self._stop(EXIT_OK, "closed")
                self._on_phase(msg)
            elif isinstance(msg, Leave | Heartbeat | PhaseAck | Join):
                self._on_control(msg)
            elif self.member is not False:
                own_settlement = isinstance(msg, Settlement) and msg.prosumer == self.agent_id
                if own_settlement and self._inject_fault(msg.interval, "settle"):
                    continue
                self._handle(msg)
                if isinstance(msg, Settlement):
                    self._write_row()

    def _join(self) -> None:
        seq = self.link.next_control_seq()
        self.link.send(DSO_ID, Join(self.agent_id, 0, seq))

    def _resync(self) -> None:
        """The connection to the relay dropped: messages may be lost, so start afresh.

        Sit out the rest of the interval (what arrived of it may have gaps) and join again:
        the DSO takes a ``Join`` from a live prosumer as a new incarnation, marks it absent
        for the rest of the interval and admits it at the next open.
        """
        self.member = False
        self.resyncs += 1
        self._join()

    # -- message handling ---------------------------------------------------------------
    def _handle(self, msg: Message) -> list[Outgoing]:
        """Feed ``msg`` to the agent and send what it returns; return that."""
        start = time.perf_counter()
        try:
            out = self.agent.handle(msg)
        except Terminated:
            raise
        except Exception as exc:  # the receive path is a boundary: refuse, count, go on
            self.link.handler_failed(msg, exc)
            out = []
        self.compute_s += time.perf_counter() - start
        if any(isinstance(m, Schedule) for _, m in out):
            self.scheduled = self.interval
            self._write_record("scheduled", self.agent.book(0.0, 0.0))  # before it can arrive
        elif isinstance(msg, Absent) and self.scheduled == self.interval:
            self._write_record("scheduled", self.agent.book(0.0, 0.0))  # a trade may be void
        self.link.send_all(out)
        return out

    def _on_phase(self, msg: Phase) -> None:
        if msg.phase == "open":
            self._check_stream(msg.interval)
            self._flush_messages()
            self.interval = msg.interval
            self.member = None
            self.compute_s = 0.0
            self.link.send_s = 0.0
        elif self.member is None:
            own = self.agent.envelopes.get(self.agent_id)
            self.member = msg.interval == self.interval and own is not None
        if self.member is False or self._inject_fault(msg.interval, msg.phase):
            return
        out = self._handle(msg)
        if msg.phase == "open" or not self.script.acked((msg.phase, msg.round)):
            return
        if not any(isinstance(m, Schedule) for _, m in out):  # a Schedule is the ack
            seq = self.link.next_control_seq()
            ack = PhaseAck(self.agent_id, msg.interval, seq, msg.phase, msg.round)
            self.link.send(DSO_ID, ack)

    def _inject_fault(self, interval: int, phase: str) -> bool:
        """Carry out an injected fault due now; ``True`` when it drops this message."""
        fault = self.fault
        if fault is not None and fault.action == FaultAction.DROP and fault.is_due(interval, phase):
            self.drop_until = time.monotonic() + fault.stall_ms / 1000
            return True
        apply_fault(fault, interval, phase, self.link.flush)
        return False

    def _check_stream(self, next_interval: int) -> None:
        """Record the intervals before ``next_interval`` whose DSO messages were lost, and
        join again.

        The DSO publishes every ``open`` to every process, and ends an interval a prosumer
        took part in with its ``Settlement`` (or a ``Leave``, which clears ``member``). The
        ``Join`` makes the DSO take the process as a new incarnation from the next ``open``
        (it re-admits a prosumer it marked absent only once heard from again).
        """
        last = self.interval
        if last < 0:
            return
        lost = list(range(last + 1, next_interval))
        if self.member is True and self.row_written != last:
            lost.insert(0, last)
        if lost:
            self.lost_intervals.extend(lost)
            self.writer.write({"type": "gap", "interval": next_interval, "lost_intervals": lost})
            self._join()  # a lost Leave would leave it absent for good; a Join re-admits it

    def _on_control(self, msg: Message) -> None:
        if isinstance(msg, Leave) and msg.sender == DSO_ID and msg.interval == self.interval:
            self.member = False  # absent for the rest of the interval; say we are alive
            alive = Heartbeat(self.agent_id, msg.interval, self.link.next_control_seq())
            self.link.send(DSO_ID, alive)

    # -- records --------------------------------------------------------------------------
    def _write_row(self) -> None:
        outcome = self.agent.last_outcome
        if outcome is None or outcome.interval != self.interval:
            return
        if self.row_written == self.interval:
            return
        self.row_written = self.interval
        self._write_record("row", outcome)

    def _write_record(self, kind: str, outcome: ProsumerOutcome) -> None:
        """Record ``outcome`` and the trades this prosumer reports (as their seller)."""
        trades = [outcome_row(t) for t in self.agent.last_trades if t.reported_by == "seller"]
        self.writer.write(
            {
                "type": kind,
                "interval": self.interval,
                "row": outcome_row(outcome),
                "trades": trades,
                "compute_ms": self.compute_s * 1000,
                "send_ms": self.link.send_s * 1000,
            }
        )

    def _flush_messages(self) -> None:
        kinds = take_counters(self.link.transport)
        refused = self.link.guard.refused
        if not kinds and not refused:
            return
        self.writer.write(
            {
                "type": "messages",
                "interval": self.interval,
                "kinds": kinds,
                "refused": [[r, k, n] for (r, k), n in sorted(refused.items())],
            }
        )
        refused.clear()

    def _stop(self, status: int, reason: str) -> int:
        self._flush_messages()
        return self.writer.write_final(
            status,
            reason,
            self.interval,
            resyncs=self.resyncs,
            lost_intervals=self.lost_intervals,
        )
