"""The prosumer agent, sans-IO: a message handler that returns the messages to send.

Per interval (phases opened by the DSO clock, see ``docs/protocol.md``):

1. ``Phase(open)``: start the interval; then the ``Envelopes`` table (public, one row per
   prosumer) and the ``VarPrices`` table (public, one row per prosumer bus) arrive.
2. ``Phase(orders)``: observe, ask the policy, project the action onto a feasible plan
   (:func:`agents.plan.plan_interval`), start the clearing protocol with the own order.
3. ``Phase(clear)`` / ``Phase(confirm)`` and peer messages: handled by the clearing protocol.
4. ``Phase(schedule)``: take the confirmed trades, commit the plan (battery state of charge),
   send the ``Schedule`` to the DSO.
5. ``Absent`` (any time after ``orders``): the DSO takes a prosumer out of the interval; the
   clearing protocol voids every trade with it (:meth:`ClearingProtocol.void_counterparty`).
6. ``Settlement``: the DSO's Var amount and meter voltage; the prosumer settles the rest of
   its bill with :func:`agents.settlement.settle_bill` from the trades still final (a trade
   voided after the ``Schedule`` is billed at retail): P2P, retail, the P2P network charge
   and, in the run's last interval, the change of stored energy.

The same object runs in the Mesa backend and in its own OS process.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.battery import Battery
from agents.clearing import ClearedTrade, ClearingProtocol, ProtocolName, make_protocol
from agents.clearing.errors import REFUSALS
from agents.errors import AgentError
from agents.orders import SIDE_BUY, SIDE_NAMES, SIDE_SELL
from agents.outcome import ProsumerOutcome, TradeOutcome
from agents.plan import Plan, plan_interval
from agents.policy import Observation, Policy, played_action
from agents.settlement import (
    NO_TRADES,
    P2PTotals,
    final_storage_eur,
    initial_price_eur_per_kwh,
    last_price_eur_per_kwh,
    p2p_totals,
    settle_bill,
    storage_price_eur_per_kwh,
)
from messaging.capped import CappedList
from messaging.messages import (
    DSO_ID,
    Absent,
    Bid,
    Envelope,
    Envelopes,
    Error,
    Message,
    Offer,
    Outgoing,
    Phase,
    Schedule,
    Settlement,
    Trade,
    TradeConfirm,
    VarPrices,
)

#: Message kinds handled by the clearing protocol (it checks interval, sender and replay).
MARKET_KINDS = (Bid, Offer, Trade, TradeConfirm)


@dataclass(frozen=True)
class ProsumerSeries:
    """A prosumer's own per-interval data over the run (index = run interval)."""

    hour_of_day: np.ndarray
    load_kw: np.ndarray
    load_q_kvar: np.ndarray
    pv_kw: np.ndarray
    retail_eur_per_kwh: np.ndarray
    feed_in_eur_per_kwh: np.ndarray


class ProsumerAgent:
    """One prosumer: observes, decides through its policy, trades, settles."""

    def __init__(
        self,
        agent_id: str,
        bus: int,
        battery: Battery,
        inverter_kva: float,
        series: ProsumerSeries,
        policy: Policy,
        protocol: ProtocolName,
        p2p_market: bool,
        var_market: bool,
        duration_h: float,
        initial_soc_kwh: float,
        network_charge_eur_per_kwh: float,
    ) -> None:
        self.agent_id = agent_id
        self.bus = bus
        self.battery = battery
        self.inverter_kva = inverter_kva
        self.series = series
        self.policy = policy
        self.p2p_market = p2p_market
        self.var_market = var_market
        self.duration_h = duration_h
        self.network_charge_eur_per_kwh = network_charge_eur_per_kwh
        self.initial_soc_kwh = initial_soc_kwh
        self.soc_kwh = initial_soc_kwh
        self.storage_price_eur_per_kwh = float(
            storage_price_eur_per_kwh(battery.efficiency, series.retail_eur_per_kwh)
        )
        self.last_price_eur_per_kwh = float(
            initial_price_eur_per_kwh(series.retail_eur_per_kwh[0], series.feed_in_eur_per_kwh[0])
        )
        self.last_vm_pu = 1.0
        self._seq = itertools.count()
        self.protocol: ClearingProtocol | None = None
        if p2p_market:
            # Transports validate every message they deliver, so the protocol need not repeat it.
            self.protocol = make_protocol(
                protocol, sender=agent_id, next_seq=self._next_seq, validate_inputs=False
            )
        self.interval = -1
        self.errors: CappedList[str] = CappedList()
        #: The outcome of the last settled interval (None before the first).
        self.last_outcome: ProsumerOutcome | None = None
        #: The final trades of the current interval, as this prosumer records them.
        self.last_trades: list[TradeOutcome] = []
        self.envelopes: dict[str, Envelope] = {}
        self._reset_interval(-1)
        self._handlers: dict[type[Message], Callable[[Any], list[Outgoing]]] = {
            Error: self._on_error,
            Phase: self._on_phase,
            Envelopes: self._on_envelopes,
            VarPrices: self._on_var_prices,
            Settlement: self._on_settlement,
            Absent: self._on_absent,
            **dict.fromkeys(MARKET_KINDS, self._on_market),
        }

    # -- message entry point -------------------------------------------------------------
    def handle(self, msg: Message) -> list[Outgoing]:
        """React to one message; return the messages to send (``to=None`` broadcasts)."""
        handler = self._handlers.get(type(msg))
        if handler is None:
            return self._refuse(msg, f"a prosumer does not take {msg.kind} messages")
        return handler(msg)

    def _on_error(self, msg: Error) -> list[Outgoing]:
        # Recorded, never answered (no error ping-pong).
        self.errors.append(f"{msg.sender} refused {msg.refused_kind}: {msg.reason}")
        return []

    def _on_market(self, msg: Message) -> list[Outgoing]:
        if self.protocol is None:
            return self._refuse(msg, "no P2P market runs in this simulation")
        return self.protocol.on_message(msg)

    def _on_envelopes(self, msg: Envelopes) -> list[Outgoing]:
        if msg.interval != self.interval or msg.sender != DSO_ID:
            return self._refuse(msg, self._why_not_current(msg))
        self.envelopes = msg.by_prosumer()
        return []

    def _on_var_prices(self, msg: VarPrices) -> list[Outgoing]:
        if msg.interval != self.interval or msg.sender != DSO_ID:
            return self._refuse(msg, self._why_not_current(msg))
        for bus, price in msg.rows:
            if bus == self.bus:
                self.var_price_eur_per_kvarh = price
        return []

    def _on_absent(self, msg: Absent) -> list[Outgoing]:
        if msg.interval != self.interval or msg.sender != DSO_ID:
            return self._refuse(msg, self._why_not_current(msg))
        if self.protocol is not None and self.plan is not None and msg.prosumer != self.agent_id:
            self.protocol.void_counterparty(msg.prosumer)  # the clearing started: void its trades
        return []

    def _why_not_current(self, msg: Message) -> str:
        if msg.sender != DSO_ID:
            return f"{msg.kind} from {msg.sender!r}, not from the DSO"
        return f"{msg.kind} for interval {msg.interval}, now {self.interval}"

    # -- phases ----------------------------------------------------------------------------
    def _on_phase(self, msg: Phase) -> list[Outgoing]:
        if msg.sender != DSO_ID:
            return self._refuse(msg, f"phase from {msg.sender!r}, not from the DSO")
        if msg.phase == "open":
            self._reset_interval(msg.interval)
            return []
        if msg.interval != self.interval:
            return self._refuse(msg, f"phase for interval {msg.interval}, now {self.interval}")
        if msg.phase == "orders":
            return self._decide()
        if msg.phase in ("clear", "confirm"):
            return self.protocol.on_phase(msg.phase, msg.round) if self.protocol else []
        if msg.phase == "schedule":
            return self._schedule()
        return []

    def _reset_interval(self, interval: int) -> None:
        self.interval = interval
        self.envelopes = {}
        self.var_price_eur_per_kvarh = 0.0
        self.plan: Plan | None = None
        self.action_error = ""
        #: The interval's final P2P trades, summed.
        self.p2p: P2PTotals[float] = NO_TRADES
        self.policy_fallback = ""

    def observe(self) -> Observation[float]:
        """The observation of the current interval (requires the own envelope)."""
        t = self.interval
        own = self.envelopes.get(self.agent_id)
        return Observation(
            hour_of_day=float(self.series.hour_of_day[t]),
            load_kw=float(self.series.load_kw[t]),
            load_q_kvar=float(self.series.load_q_kvar[t]),
            pv_kw=float(self.series.pv_kw[t]),
            soc_kwh=self.soc_kwh,
            battery_kwh=self.battery.capacity_kwh,
            battery_kw=self.battery.power_kw,
            inverter_kva=self.inverter_kva,
            export_kw=own.export_kw if own is not None else 0.0,
            import_kw=own.import_kw if own is not None else 0.0,
            q_min_kvar=own.q_min_kvar if own is not None else 0.0,
            q_max_kvar=own.q_max_kvar if own is not None else 0.0,
            var_price_eur_per_kvarh=self.var_price_eur_per_kvarh,
            retail_eur_per_kwh=float(self.series.retail_eur_per_kwh[t]),
            feed_in_eur_per_kwh=float(self.series.feed_in_eur_per_kwh[t]),
            last_price_eur_per_kwh=self.last_price_eur_per_kwh,
            last_vm_pu=self.last_vm_pu,
            p2p_market=self.p2p_market,
            var_market=self.var_market,
            interval=t,
        )

    def _decide(self) -> list[Outgoing]:
        obs = self.observe()
        self.last_obs = obs
        action, self.action_error = played_action(self.policy, obs)
        if self.action_error:
            self.errors.append(f"interval {self.interval}: {self.action_error}; abstaining")
        self.policy_fallback = getattr(self.policy, "fallback_reason", "")
        t = self.interval
        plan = plan_interval(
            action, obs, self.battery, self.duration_h, self.network_charge_eur_per_kwh
        )
        self.plan = plan
        if self.protocol is None:
            return []
        order: Bid | Offer | None = None
        if plan.order_side == SIDE_SELL:
            order = Offer(
                self.agent_id, t, self._next_seq(), plan.order_kwh, plan.limit_price_eur_per_kwh
            )
        elif plan.order_side == SIDE_BUY:
            order = Bid(
                self.agent_id, t, self._next_seq(), plan.order_kwh, plan.limit_price_eur_per_kwh
            )
        try:
            return self.protocol.start(t, order, dict(self.envelopes), self.duration_h)
        except REFUSALS as exc:  # own order refused by the protocol: take part without it
            self.errors.append(f"interval {t}: own order refused: {exc}")
            return self.protocol.start(t, None, dict(self.envelopes), self.duration_h)

    def _schedule(self) -> list[Outgoing]:
        if self.plan is None:  # no decision this interval (joined late): stay idle
            return []
        out: list[Outgoing] = []
        if self.protocol is not None:
            out = self.protocol.on_phase("schedule", 0)
        self._take_trades()
        self.soc_kwh = self.plan.next_soc_kwh
        net_kwh = self.p2p.net_sold_kwh
        return [
            *out,
            (
                DSO_ID,
                Schedule(
                    self.agent_id,
                    self.interval,
                    self._next_seq(),
                    self.plan.p_kw,
                    self.plan.q_kvar,
                    net_kwh,
                ),
            ),
        ]

    def _take_trades(self) -> None:
        """Set the interval's P2P totals from the protocol's final trades."""
        trades: list[ClearedTrade] = (
            self.protocol.final_trades() if self.protocol is not None else []
        )
        if not trades:
            self.last_trades, self.p2p = [], NO_TRADES
            return
        me = self.agent_id
        self.last_trades = [
            TradeOutcome(
                self.interval,
                tr.buyer,
                tr.seller,
                tr.quantity_kwh,
                tr.price_eur_per_kwh,
                "buyer" if tr.buyer == me else "seller",
            )
            for tr in trades
        ]
        # parties: 0 this prosumer, 1 its counterparties
        self.p2p = p2p_totals(
            [int(tr.buyer != me) for tr in trades],
            [int(tr.seller != me) for tr in trades],
            [tr.quantity_kwh for tr in trades],
            [tr.price_eur_per_kwh for tr in trades],
            (2,),
        ).at(0)

    def _on_settlement(self, msg: Settlement) -> list[Outgoing]:
        if msg.interval != self.interval or msg.sender != DSO_ID:
            return self._refuse(msg, self._why_not_current(msg))
        if msg.prosumer != self.agent_id or self.plan is None:
            return self._refuse(msg, "settlement not for this prosumer's schedule")
        self.last_vm_pu = msg.vm_pu
        self.last_outcome = self.book(msg.var_eur, msg.vm_pu)
        settled = getattr(self.policy, "settled", None)
        if settled is not None:  # a policy that learns from its own outcomes (the MPC)
            settled(self.last_outcome)
        self.last_price_eur_per_kwh = float(
            last_price_eur_per_kwh(self.p2p, self.last_price_eur_per_kwh)
        )
        return []

    def book(self, var_eur: float, vm_pu: float) -> ProsumerOutcome:
        """The interval's row once scheduled: the P2P figures from the trades still final
        (a trade voided since the ``Schedule`` drops out), the bill with the DSO's Var amount
        ``var_eur``, the meter voltage ``vm_pu``.

        At the ``Settlement`` with its figures; the deployment also books it at the
        ``Schedule`` with zeros, for the DSO's records to complete if the process dies
        before its settlement arrives (``docs/deploy.md``).
        """
        plan, obs, t = self.plan, self.last_obs, self.interval
        if plan is None:
            raise AgentError(f"{self.agent_id}: interval {t} has no schedule to book")
        self._take_trades()
        last = t == len(self.series.retail_eur_per_kwh) - 1
        storage = final_storage_eur(
            last, self.initial_soc_kwh, self.soc_kwh, self.storage_price_eur_per_kwh
        )
        bill = settle_bill(
            plan.p_kw,
            self.p2p,
            var_eur,
            obs,
            self.network_charge_eur_per_kwh,
            storage,
            self.duration_h,
        )
        own = self.envelopes.get(self.agent_id)
        return ProsumerOutcome(
            interval=t,
            prosumer=self.agent_id,
            bus=self.bus,
            load_kw=obs.load_kw,
            pv_kw=obs.pv_kw,
            pv_used_kw=plan.pv_used_kw,
            battery_p_kw=plan.battery_p_kw,
            soc_kwh=self.soc_kwh,
            p_kw=plan.p_kw,
            q_kvar=plan.q_kvar,
            q_inverter_kvar=plan.q_inverter_kvar,
            export_limit_kw=own.export_kw if own is not None else 0.0,
            import_limit_kw=own.import_kw if own is not None else 0.0,
            q_min_limit_kvar=obs.q_min_kvar,
            q_max_limit_kvar=obs.q_max_kvar,
            import_violation_kw=plan.import_violation_kw,
            var_price_eur_per_kvarh=self.var_price_eur_per_kvarh,
            order_side=SIDE_NAMES[plan.order_side],
            order_kwh=plan.order_kwh,
            limit_price_eur_per_kwh=plan.limit_price_eur_per_kwh,
            p2p_bought_kwh=self.p2p.bought_kwh,
            p2p_sold_kwh=self.p2p.sold_kwh,
            p2p_eur=float(bill.p2p_eur),
            retail_eur=float(bill.retail_eur),
            var_eur=float(bill.var_eur),
            network_eur=float(bill.network_eur),
            storage_eur=float(bill.storage_eur),
            bill_eur=float(bill.bill_eur),
            vm_pu=vm_pu,
            action_error=self.action_error,
            policy_fallback=self.policy_fallback,
        )

    # -- helpers ---------------------------------------------------------------------------
    def _next_seq(self) -> int:
        return next(self._seq)

    def _refuse(self, msg: Message, reason: str) -> list[Outgoing]:
        self.errors.append(f"refused {msg.kind} from {msg.sender}: {reason}")
        if msg.sender == self.agent_id:
            return []
        interval = max(self.interval, 0)
        reply = Error(self.agent_id, interval, self._next_seq(), msg.kind, msg.seq, reason)
        return [(msg.sender, reply)]
