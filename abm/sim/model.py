"""The in-process backend: a Mesa 3 model whose agents talk through the in-memory bus.

``MarketModel.step()`` runs one market interval as the phases of its
:class:`agents.interval.IntervalScript` (``SimConfig.interval_script()``), the same script the
DSO process's clock runs:

1. ``open``     — the DSO opens the interval: envelopes (public) and Var prices;
2. ``orders``   — prosumers observe, ask their policy and send their orders;
3. the clearing protocol's ticks (``clear``/``confirm``), with a P2P market only;
4. ``schedule`` — prosumers commit their plan and send their schedule to the DSO;
5. ``settle``   — the DSO runs the AC power flow and settles retail and Var amounts;

then ``collect``: rows of every result table go to the Mesa ``DataCollector``.

After each phase the bus is drained: every agent handles its queued messages (in agent
order, FIFO per agent) until no message is left, so a phase ends when the agents are quiet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Generic, TypeVar

import mesa
import numpy as np
import pandas as pd

from abm.config import SimConfig
from abm.inputs.run_inputs import RunInputs, agent_rngs, build_run_inputs, make_dso, make_prosumer
from agents.policy import Policy
from agents.policy_registry import PolicyMaker, policy_maker
from agents.prosumer import ProsumerAgent
from analysis.metrics import with_bill_totals
from analysis.tables import TABLES, outcome_columns, outcome_row
from dso.agent import DSO_ID, DSOAgent
from messaging.memory import InMemoryBus, InMemoryEndpoint
from messaging.messages import Message

#: The sans-IO logic a :class:`MessageAgent` wraps.
L = TypeVar("L", ProsumerAgent, DSOAgent)


class MessageAgent(mesa.Agent, Generic[L]):
    """A Mesa agent that wraps sans-IO logic (a prosumer or the DSO) and its bus endpoint."""

    def __init__(self, model: MarketModel, logic: L, endpoint: InMemoryEndpoint) -> None:
        super().__init__(model)
        self.logic: L = logic
        self.endpoint = endpoint

    def send_all(self, outgoing: Iterable[tuple[str | None, Message]]) -> None:
        """Send each ``(to, msg)``; ``to=None`` broadcasts."""
        for to, msg in outgoing:
            if to is None:
                self.endpoint.publish(msg)
            else:
                self.endpoint.send(to, msg)

    def step(self) -> int:
        """Handle every queued message; return how many there were."""
        messages = self.endpoint.drain()
        handle = self.logic.handle
        for msg in messages:
            outgoing = handle(msg)
            if outgoing:  # most messages are answered by nothing
                self.send_all(outgoing)
        return len(messages)


class MarketModel(mesa.Model):
    """One feeder's multi-market, every prosumer and the DSO a Mesa agent."""

    def __init__(
        self,
        config: SimConfig,
        *,
        world: RunInputs | None = None,
        policies: Mapping[str, Policy] | None = None,
    ) -> None:
        super().__init__(seed=config.seed)
        self.config = config
        self.world = world if world is not None else build_run_inputs(config)
        # In one process, send-to-receive latency is only queueing within a phase: not timed.
        self.bus = InMemoryBus(measure_latency=False)
        self.dso = MessageAgent(self, make_dso(self.world), self.bus.endpoint(DSO_ID))
        rngs = agent_rngs(config.seed, len(self.world.prosumer_ids))
        self.prosumers: list[MessageAgent[ProsumerAgent]] = []
        given = policies or {}
        make: PolicyMaker | None = None  # built once, for the first prosumer without a policy
        for i, pid in enumerate(self.world.prosumer_ids):
            policy = given.get(pid)
            if policy is None:
                make = make or policy_maker(config.policy, self.world)
                policy = make(i, rngs[i])
            logic = make_prosumer(self.world, i, policy)
            self.prosumers.append(MessageAgent(self, logic, self.bus.endpoint(pid)))
        #: Every agent in registration order, as ``self.agents`` iterates them (that AgentSet
        #: walks weak references, slow in a loop run many times per interval).
        self.members: list[MessageAgent[ProsumerAgent] | MessageAgent[DSOAgent]] = [
            self.dso,
            *self.prosumers,
        ]
        self.script = config.interval_script()
        self._next_tick = 0
        self.interval = 0
        self.datacollector = mesa.DataCollector(
            tables={name: list(outcome_columns(table)) for name, table in TABLES.items()}
        )
        self._counts_before = self._message_totals()

    @property
    def done(self) -> bool:
        """Whether every interval of the run has been simulated."""
        return self.interval >= self.world.n_intervals

    # -- phases ------------------------------------------------------------------------------
    def deliver(self) -> None:
        """Let every agent handle its messages until the bus is quiet.

        An agent with an empty queue is passed over (its step would handle nothing): most
        agents of a delivery round have nothing queued.
        """
        members = self.members
        handled = 1
        while handled:
            handled = 0
            for agent in members:
                if agent.endpoint.queue:
                    handled += agent.step()

    def open(self) -> None:
        """The DSO opens the interval (envelopes and Var prices)."""
        self.dso.send_all(self.dso.logic.open_interval(self.interval))
        self.deliver()
        self._next_tick = 0

    def run_ticks(self, through: str | None = None) -> None:
        """Open the script's next ticks up to its last one named ``through`` (default: all)."""
        ticks = self.script.ticks
        end = len(ticks)
        if through is not None:
            end = max(i for i, (name, _) in enumerate(ticks) if name == through) + 1
        for name, round_ in ticks[self._next_tick : end]:
            self.dso.send_all(self.dso.logic.phase(name, round_))
            self.deliver()
        self._next_tick = max(self._next_tick, end)

    def settle(self) -> None:
        """Power flow and settlements."""
        self.dso.send_all(self.dso.logic.settle())
        self.deliver()

    def collect(self) -> None:
        """One row per table and interval (per prosumer, trade, bus, message kind)."""
        t = self.interval
        dc = self.datacollector
        dc.add_table_row("intervals", outcome_row(self.dso.logic.last_outcome))
        for agent in self.prosumers:
            outcome = agent.logic.last_outcome
            if outcome is not None and outcome.interval == t:
                dc.add_table_row("prosumers", outcome_row(outcome))
                for trade in agent.logic.last_trades:
                    if trade.reported_by == "seller":
                        dc.add_table_row("trades", outcome_row(trade))
        vm = self.dso.logic.last_vm_pu
        for bus, value in enumerate(np.asarray(vm)):
            dc.add_table_row("buses", {"interval": t, "bus": bus, "vm_pu": float(value)})
        counts = self._message_totals()
        for kind, totals in sorted(counts.items()):
            delta = [
                now - before
                for now, before in zip(
                    totals, self._counts_before.get(kind, (0, 0, 0)), strict=True
                )
            ]
            if delta[0] or delta[1]:
                row = dict(zip(TABLES["messages"].column_names, (t, kind, *delta), strict=True))
                dc.add_table_row("messages", row)
        self._counts_before = counts

    def tables(self) -> dict[str, pd.DataFrame]:
        """The result tables so far, ``intervals`` with the totals of the prosumers' bills."""
        tables = {name: self.datacollector.get_table_dataframe(name) for name in TABLES}
        tables["intervals"] = with_bill_totals(tables["intervals"], tables["prosumers"])
        return tables

    def _message_totals(self) -> dict[str, tuple[int, int, int]]:
        """Per kind, over all agents: messages sent, messages delivered, bytes sent."""
        totals: dict[str, tuple[int, int, int]] = {}
        for agent in self.members:
            for kind, st in agent.endpoint.counters.kinds.items():
                sent, recv, nbytes = totals.get(kind, (0, 0, 0))
                totals[kind] = (sent + st.msgs_sent, recv + st.msgs_recv, nbytes + st.bytes_sent)
        return totals

    def begin_interval(self) -> None:
        """Run the interval up to the point where prosumers observe (the RL env's reset)."""
        self.open()

    def finish_interval(self) -> None:
        """Run the rest of the interval from the decisions on: every tick, settle, collect."""
        self.run_ticks()
        self.settle()
        self.collect()
        self.interval += 1

    def step(self) -> None:
        """One market interval: every phase of the script, then collect."""
        self.begin_interval()
        self.finish_interval()
