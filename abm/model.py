"""The in-process backend: a Mesa 3 model whose agents talk through the in-memory bus.

``MarketModel.step()`` runs one market interval as named phases, in this order:

1. ``publish``  — the DSO opens the interval: envelopes (public) and Var prices;
2. ``decide``   — prosumers observe, ask their policy and send their orders;
3. ``clear``    — the decentralized P2P clearing protocol runs among the peers;
4. ``schedule`` — prosumers commit their plan and send their schedule to the DSO;
5. ``settle``   — the DSO runs the AC power flow and settles retail and Var amounts;
6. ``collect``  — rows of every result table go to the Mesa ``DataCollector``.

After each phase the bus is drained: every agent handles its queued messages (in agent
order, FIFO per agent) until no message is left, so a phase ends when the agents are quiet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Generic, TypeVar

import mesa
import numpy as np
import pandas as pd

from abm.sim_config import SimConfig, market_has_p2p
from abm.world import World, agent_rngs, build_world, make_dso, make_policy, make_prosumer
from agents.clearing import clearing_ticks
from agents.policy import Policy
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
        for msg in messages:
            self.send_all(self.logic.handle(msg))
        return len(messages)


class MarketModel(mesa.Model):
    """One feeder's multi-market, every prosumer and the DSO a Mesa agent."""

    def __init__(
        self,
        config: SimConfig,
        *,
        world: World | None = None,
        policies: Mapping[str, Policy] | None = None,
    ) -> None:
        super().__init__(seed=config.seed)
        self.config = config
        self.world = world if world is not None else build_world(config)
        # In one process, send-to-receive latency is only queueing within a phase: not timed.
        self.bus = InMemoryBus(measure_latency=False)
        self.dso = MessageAgent(self, make_dso(self.world), self.bus.endpoint(DSO_ID))
        rngs = agent_rngs(config.seed, len(self.world.prosumer_ids))
        self.prosumers: list[MessageAgent[ProsumerAgent]] = []
        for i, pid in enumerate(self.world.prosumer_ids):
            policy = (policies or {}).get(pid) or make_policy(config.policy, rngs[i], self.world, i)
            logic = make_prosumer(self.world, i, policy)
            self.prosumers.append(MessageAgent(self, logic, self.bus.endpoint(pid)))
        p2p = market_has_p2p(config.market)
        self.clearing_ticks = clearing_ticks(config.protocol) if p2p else ()
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
        """Let every agent handle its messages until the bus is quiet."""
        while sum(agent.step() for agent in self.agents) > 0:
            pass

    def publish(self) -> None:
        """Phase 1: the DSO opens the interval (envelopes and Var prices)."""
        self.dso.send_all(self.dso.logic.open_interval(self.interval))
        self.deliver()

    def decide(self) -> None:
        """Phase 2: prosumers decide and send their orders."""
        self._dso_phase("orders")

    def clear(self) -> None:
        """Phase 3: the clearing protocol's clock ticks (auction: clear, confirm)."""
        for name, round_ in self.clearing_ticks:
            self._dso_phase(name, round_)

    def schedule(self) -> None:
        """Phase 4: prosumers commit and send schedules."""
        self._dso_phase("schedule")

    def settle(self) -> None:
        """Phase 5: power flow and settlements."""
        self.dso.send_all(self.dso.logic.settle())
        self.deliver()

    def collect(self) -> None:
        """Phase 6: one row per table and interval (per prosumer, trade, bus, message kind)."""
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
        for agent in self.agents:
            for kind, st in agent.endpoint.counters.kinds.items():
                sent, recv, nbytes = totals.get(kind, (0, 0, 0))
                totals[kind] = (sent + st.msgs_sent, recv + st.msgs_recv, nbytes + st.bytes_sent)
        return totals

    def _dso_phase(self, name: str, round_: int = 0) -> None:
        self.dso.send_all(self.dso.logic.phase(name, round_))
        self.deliver()

    def begin_interval(self) -> None:
        """Run the interval up to the point where prosumers observe (the RL env's reset)."""
        self.publish()

    def finish_interval(self) -> None:
        """Run the rest of the interval from the decisions on."""
        self.decide()
        self.clear()
        self.schedule()
        self.settle()
        self.collect()
        self.interval += 1

    def step(self) -> None:
        """One market interval: publish, decide, clear, schedule, settle, collect."""
        self.begin_interval()
        self.finish_interval()
