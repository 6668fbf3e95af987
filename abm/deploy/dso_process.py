"""The DSO process: hosts the relay and runs the market clock over the sans-IO DSO agent.

Per interval the clock drives :class:`dso.agent.DSOAgent` through the run's
:class:`agents.interval.IntervalScript`, the script the in-process
:class:`abm.sim.model.MarketModel` runs: ``open_interval(t)``, ``phase(name, round)`` per tick
(``orders``, the clearing protocol's ticks, ``schedule``), ``settle()``. After each tick but
the silent ones (at which prosumers send nothing) it waits until every live prosumer has
acked it (a ``PhaseAck`` of the tick, sent by the prosumer's main loop after handling the
``Phase`` and sending its outputs; at ``schedule`` the prosumer's ``Schedule``, the last
message it sends in that phase, is its ack). The relay delivers everything over one connection per
agent in relay order and releases the prosumers' held broadcasts just before the DSO's next
message, so once every ack is in, every message those prosumers sent in the phase reaches
its recipients ahead of the next ``Phase``: the same deliver-all-then-next-phase semantics as
the in-process bus, and the same trades for the same seed.

A prosumer that has not acked by the phase deadline is marked absent for the rest of the
interval: it gets a ``Leave`` (so it stops taking part), the other prosumers get an
``Absent`` broadcast before the next phase opens (they void their trades with it), its
later messages are refused, it gets no settlement, and the DSO settles the interval without
it (at its forecast, no trades). It is admitted again at the next ``open`` once the DSO has
heard from it since (a late ack, or a ``Join`` from a restarted process). Only admitted
prosumers receive envelopes and Var prices, so peers refuse orders from anyone else.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from abm.deploy.faults import Fault, apply_fault
from abm.deploy.lifecycle import (
    EXIT_NO_PROSUMERS,
    EXIT_OK,
    EXIT_TERMINATED,
    Terminated,
)
from abm.deploy.link import AgentLink
from abm.deploy.records import RecordWriter, take_counters
from abm.deploy.spec import CLOSE_TIMEOUT_MS, DSO_HEARTBEAT_MS, DSO_ID, RunSpec
from agents.interval import ORDERS, SCHEDULE, IntervalScript
from analysis.tables import outcome_row
from dso.agent import DSOAgent
from messaging.messages import (
    Envelopes,
    Error,
    Heartbeat,
    Join,
    Leave,
    Message,
    Outgoing,
    PhaseAck,
    Schedule,
    Settlement,
)

_T = TypeVar("_T")

#: Longest single receive of the clock, ms (bounds how late heartbeats go out).
CLOCK_POLL_MS = 100
#: Hang: sleep in slices of this many seconds until killed.


@dataclass
class Member:
    """What the DSO knows of one prosumer process."""

    joined: bool = False
    absent_since: float | None = None
    heard_at: float = field(default=0.0)

    def admissible(self) -> bool:
        """Joined, and heard from since it was last marked absent."""
        return self.joined and (self.absent_since is None or self.heard_at > self.absent_since)


class DsoClock:
    """The market clock of one run (see the module docstring)."""

    def __init__(
        self,
        spec: RunSpec,
        prosumer_ids: Iterable[str],
        n_intervals: int,
        dso: DSOAgent,
        link: AgentLink,
        writer: RecordWriter,
        relay_stats: Callable[[], dict[str, Any]],
        script: IntervalScript,
        fault: Fault | None = None,
    ) -> None:
        self.spec = spec
        self.order = tuple(prosumer_ids)
        self.n_intervals = n_intervals
        self.dso = dso
        self.link = link
        self.writer = writer
        self.relay_stats = relay_stats
        self.fault = fault
        self.script = script
        self.members = {pid: Member() for pid in self.order}
        self.live: set[str] = set()
        self.acked: dict[str, tuple[str, int]] = {}
        self.tick: tuple[str, int] = ("open", 0)
        self.interval = -1
        self.completed = -1
        self.compute_s = 0.0
        self.marked: list[tuple[str, str]] = []

    # -- run ------------------------------------------------------------------------------
    def run(self) -> int:
        """Wait for the prosumers, run every interval, close; return the exit status."""
        try:
            if not self.wait_for_joins():
                return self._final(EXIT_NO_PROSUMERS, "no prosumer joined")
            self._flush_messages(-1)
            for t in range(self.n_intervals):
                self.run_interval(t)
            self.close()
            return self._final(EXIT_OK, "closed")
        except Terminated as exc:
            return self._final(EXIT_TERMINATED, f"terminated by {exc}")

    def wait_for_joins(self) -> bool:
        """Wait until every prosumer joined or the join timeout; whether any joined."""
        deadline = time.monotonic() + self.spec.options.join_timeout_ms / 1000
        self._heartbeat()
        while not all(m.joined for m in self.members.values()):
            if time.monotonic() >= deadline:
                break
            self._receive_once(deadline)
        return any(m.joined for m in self.members.values())

    def run_interval(self, t: int) -> None:
        """Open, run every phase, settle and record interval ``t``."""
        start = time.perf_counter()
        start_ns = time.time_ns()
        link = self.link
        link.send_s = link.recv_s = self.compute_s = 0.0
        self.interval = t
        self.marked = []
        self._drain_inbox()
        admitted = self._admissible()
        if not admitted:
            admitted = self._await_return()
        for p in admitted:
            self.members[p].absent_since = None
        self.live = set(admitted)
        self.acked = dict.fromkeys(admitted, ("open", 0))
        self._send(self._logic(self.dso.open_interval, t), only_live=True)
        phase_ms = []
        for name, round_ in self.script.ticks:
            phase_start = time.perf_counter()
            self.tick = (name, round_)
            self._send(self._logic(self.dso.phase, name, round_))
            if name == ORDERS and t + 1 < self.n_intervals:
                self.link.flush()  # the prosumers decide while the DSO prepares the next open
                self._logic(self.dso.prepare, t + 1)
            if self.script.acked(self.tick):  # a silent tick's Phase goes ahead of the next
                self._await_acks(name)
            apply_fault(self.fault, self.interval, name, self.link.flush)
            phase_ms.append([name, round_, (time.perf_counter() - phase_start) * 1000])
        settle = self._logic(self.dso.settle)
        self._send(settle, only_live=True)
        wall_ms = (time.perf_counter() - start) * 1000
        self.completed = t
        settled = {
            m.prosumer: [m.var_eur, m.vm_pu]
            for _, m in settle
            if isinstance(m, Settlement) and m.prosumer in self.live
        }
        self._write_interval(t, start_ns, wall_ms, phase_ms, settled)
        apply_fault(self.fault, self.interval, "settle", self.link.flush)

    def close(self) -> None:
        """Publish ``Phase(close)`` and wait (bounded) for every joined prosumer's ``Leave``."""
        self._send(self.dso.phase("close"))
        deadline = time.monotonic() + CLOSE_TIMEOUT_MS / 1000
        while any(m.joined for m in self.members.values()) and time.monotonic() < deadline:
            self._receive_once(deadline)

    # -- membership -----------------------------------------------------------------------
    def _admissible(self) -> list[str]:
        return [p for p in self.order if self.members[p].admissible()]

    def _drain_inbox(self) -> None:
        """Handle everything already queued (late acks, joins) without waiting."""
        while (msg := self.link.receive(0, self.dso.interval)) is not None:
            self._dispatch_safely(msg)

    def _await_return(self) -> list[str]:
        """With nobody admissible, read the inbox up to one phase deadline for a return.

        Without this an interval with nobody would never read the inbox, and prosumers
        that come back (a late ack, a ``Join``) would never be heard: the rest of the run
        would race through empty intervals.
        """
        deadline = time.monotonic() + self.spec.options.phase_deadline_ms / 1000
        while time.monotonic() < deadline:
            self._receive_once(deadline)
            admitted = self._admissible()
            if admitted:
                return admitted
        return []

    # -- phases ---------------------------------------------------------------------------
    def _await_acks(self, name: str) -> None:
        deadline = time.monotonic() + self.spec.options.phase_deadline_ms / 1000
        while True:
            pending = [p for p in self.live if self.acked[p] != self.tick]
            if not pending:
                return
            if time.monotonic() >= deadline:
                for p in sorted(pending):
                    ms = self.spec.options.phase_deadline_ms
                    self._mark_absent(p, name, f"no ack of {name!r} within {ms} ms")
                return
            self._receive_once(deadline)

    def _mark_absent(self, pid: str, phase: str, why: str) -> None:
        """Take ``pid`` out of the interval and tell it so (a ``Leave`` from the DSO)."""
        self.live.discard(pid)
        self.members[pid].absent_since = time.monotonic()
        self.marked.append((pid, phase))
        reason = f"absent from interval {self.interval}: {why}"
        self.link.send(pid, Leave(DSO_ID, self.interval, self.link.next_control_seq(), reason))
        self._send(self._logic(self.dso.mark_absent, pid))

    def _receive_once(self, deadline: float) -> None:
        left_ms = max(0, round((deadline - time.monotonic()) * 1000))
        msg = self.link.receive(min(left_ms, CLOCK_POLL_MS), self.dso.interval)
        if msg is not None:
            self._dispatch_safely(msg)
        if time.monotonic() - self.link.last_send > DSO_HEARTBEAT_MS / 1000:
            self._heartbeat()

    def _heartbeat(self) -> None:
        """Publish a heartbeat: prosumers join on it and detect a dead DSO by its absence."""
        beat = Heartbeat(DSO_ID, max(self.interval, 0), self.link.next_control_seq())
        self.link.send(None, beat)

    def _dispatch_safely(self, msg: Message) -> None:
        try:
            self._dispatch(msg)
        except Terminated:
            raise
        except Exception as exc:  # the receive path is a boundary: refuse, count, go on
            self.link.handler_failed(msg, exc)

    def _dispatch(self, msg: Message) -> None:
        sender = msg.sender
        member = self.members.get(sender)
        if member is None:
            self.link.refuse(sender, "UnknownSender", msg.kind)
            return
        member.heard_at = time.monotonic()
        if isinstance(msg, Heartbeat):
            pass  # liveness only: heard_at is set above
        elif isinstance(msg, PhaseAck):
            self._ack(sender, msg, (msg.phase, msg.round))
        elif isinstance(msg, Join):
            member.joined = True
            if sender in self.live:  # a new incarnation takes part from the next open
                self._mark_absent(sender, "join", "a new process joined under this id")
            member.absent_since = None  # admissible at the next open, whatever came before
        elif isinstance(msg, Leave):
            member.joined = False
            self.live.discard(sender)
        elif isinstance(msg, Error):
            self.dso.handle(msg)
        elif sender in self.live:
            self._send(self._logic(self.dso.handle, msg))
            if isinstance(msg, Schedule) and self.tick[0] == SCHEDULE:
                self._ack(sender, msg)  # its last message of the phase: it stands in for the ack
        else:
            self.link.refuse(sender, "AbsentSender", msg.kind)

    def _ack(self, sender: str, msg: Message, tick: tuple[str, int] | None = None) -> None:
        """Take ``msg`` as ``sender``'s ack of ``tick`` (default: the current tick)."""
        if sender in self.live and msg.interval == self.interval:
            self.acked[sender] = tick or self.tick

    # -- helpers --------------------------------------------------------------------------
    def _logic(self, method: Callable[..., _T], *args: Any) -> _T:
        start = time.perf_counter()
        out = method(*args)
        self.compute_s += time.perf_counter() - start
        return out

    def _send(self, outgoing: list[Outgoing], *, only_live: bool = False) -> None:
        if only_live:
            outgoing = [
                (to, msg.only(self.live) if isinstance(msg, Envelopes) else msg)  # admitted rows
                for to, msg in outgoing
                if isinstance(msg, Envelopes) or self._for_live(to, msg)
            ]
        self.link.send_all(outgoing)

    def _for_live(self, to: str | None, msg: Message) -> bool:
        if to is not None:
            return to in self.live
        if isinstance(msg, Settlement):
            return msg.prosumer in self.live
        return True

    def _write_interval(
        self,
        t: int,
        start_ns: int,
        wall_ms: float,
        phase_ms: list,
        settled: dict[str, list[float]],
    ) -> None:
        """Record interval ``t``; ``settled``: each present prosumer's ``Settlement`` figures
        (Var amount, meter voltage), to complete the row of one that died before it arrived.
        """
        link = self.link
        outcome, vm_pu = self.dso.last_outcome, self.dso.last_vm_pu
        if outcome is None or vm_pu is None:
            raise RuntimeError(f"interval {t} is recorded before the DSO settled it")
        self.writer.write(
            {
                "type": "interval",
                "interval": t,
                "row": outcome_row(outcome),
                "vm_pu": [float(v) for v in vm_pu],
                "present": sorted(self.live),
                "settlements": settled,
                "marked_absent": self.marked,
                "p2p_imbalance_kwh": self._p2p_imbalance_kwh(),
                "timing": {
                    "start_ns": start_ns,
                    "wall_ms": wall_ms,
                    "dso_compute_ms": self.compute_s * 1000,
                    "dso_send_ms": link.send_s * 1000,
                    "wait_ms": link.recv_s * 1000,
                    "phases": phase_ms,
                },
            }
        )
        self._flush_messages(t)

    def _p2p_imbalance_kwh(self) -> float:
        """Net P2P energy over the settled schedules: 0 unless a trade was settled one-sided.

        Every trade counts +q for its seller and -q for its buyer. The peers void their
        trades with an absent prosumer when its ``Absent`` arrives; one that arrives after
        a peer's own schedule (a death in the ``schedule`` phase) is voided in that peer's
        row but not in its schedule, and leaves its quantity here.
        """
        return float(sum(s.p2p_net_kwh for s in self.dso.schedules.values()))

    def _flush_messages(self, t: int) -> None:
        refused = self.link.guard.refused
        self.writer.write(
            {
                "type": "messages",
                "interval": t,
                "kinds": take_counters(self.link.transport),
                "refused": [[r, k, n] for (r, k), n in sorted(refused.items())],
            }
        )
        refused.clear()

    def _final(self, status: int, reason: str) -> int:
        self._flush_messages(self.interval)
        return self.writer.write_final(
            status,
            reason,
            self.interval,
            last_completed=self.completed,
            relay=self.relay_stats(),
        )
