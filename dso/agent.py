"""The DSO agent, sans-IO: the market clock, envelopes, Var prices, power flow, settlement.

Each interval the driver (Mesa model or the DSO's own process) calls, in order:
:meth:`DSOAgent.open_interval` (``Phase(open)``, the public ``Envelopes`` table of every
prosumer, the public ``VarPrices`` table of every prosumer bus), :meth:`DSOAgent.phase`
for each market phase, feeds received ``Schedule`` messages to :meth:`DSOAgent.handle`,
then :meth:`DSOAgent.settle` (an ``Absent`` broadcast for every prosumer without a
schedule, AC power flow on the scheduled injections, ``Settlement`` to every prosumer). A
driver that learns earlier that a prosumer is gone calls :meth:`DSOAgent.mark_absent` at
once. The DSO has perfect forecasts of loads and PV (documented in ``docs/protocol.md``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from dso.blas import single_blas_thread
from dso.doe import EnvelopeRule, Envelopes, Fairness, compute_envelopes, fixed_envelopes
from dso.errors import InvalidInput
from dso.networks import Feeder
from dso.outcome import IntervalOutcome, loss_eur
from dso.powerflow import VM_MAX_PU, VM_MIN_PU, RadialPowerFlow
from dso.sensitivity import loss_sensitivities
from dso.var_price import settle_var, var_prices, var_service_kvar
from messaging.capped import CappedList
from messaging.messages import (
    DSO_ID,
    Absent,
    Bid,
    Error,
    Message,
    Offer,
    Outgoing,
    Phase,
    Schedule,
    Settlement,
    VarPrices,
)
from messaging.messages import (
    Envelopes as EnvelopesMessage,
)

#: Broadcast market messages the DSO sees on the bus but takes no part in (not refused).
OBSERVED_KINDS = (Bid, Offer)

#: Tolerance when checking a schedule against its envelope (kW, and kvar for q).
ENVELOPE_TOL_KW = 1e-6


@dataclass(frozen=True)
class DsoForecast:
    """What the DSO knows ahead of each run interval (index = run interval)."""

    prosumer_ids: tuple[str, ...]
    prosumer_bus: np.ndarray  # (n_prosumer,) bus index
    pv_kwp: np.ndarray  # (n_prosumer,) for the proportional fairness rule
    battery_kw: np.ndarray  # (n_prosumer,)
    inverter_kva: np.ndarray  # (n_prosumer,) bounds the reactive envelopes
    load_kw: np.ndarray  # (T, n_prosumer)
    load_q_kvar: np.ndarray  # (T, n_prosumer)
    pv_kw: np.ndarray  # (T, n_prosumer)
    passive_p_kw: np.ndarray  # (T, n_bus) injection of passive loads and generators
    passive_q_kvar: np.ndarray  # (T, n_bus)
    retail_eur_per_kwh: np.ndarray  # (T,)
    feed_in_eur_per_kwh: np.ndarray  # (T,)
    #: (n_prosumer,) each prosumer's export cap, kW, under the static envelope rule
    export_cap_kw: np.ndarray | None = None


@dataclass(frozen=True)
class PublicationRules:
    """How the DSO sets envelopes and Var prices (besides the market mode).

    ``envelope_rule``: :class:`EnvelopeRule` (``static`` needs the forecast's
    ``export_cap_kw``); ``var_price_scale``: the Var price is ``var_price_scale`` times the
    loss-sensitivity price at the retail tariff (published and settled alike; the DSO's own
    value of a saved loss stays at the tariff).
    """

    fairness: Fairness = Fairness.EQUAL
    var_pricing: str = "ex-post"
    envelope_rule: EnvelopeRule = EnvelopeRule.DYNAMIC
    var_price_scale: float = 1.0

    def __post_init__(self) -> None:
        scale = self.var_price_scale
        if isinstance(scale, bool) or not isinstance(scale, int | float) or not 0 <= scale < np.inf:
            raise InvalidInput(f"var_price_scale={scale!r} must be a finite number >= 0")
        if self.envelope_rule not in tuple(EnvelopeRule):
            allowed = ", ".join(EnvelopeRule)
            raise InvalidInput(f"envelope_rule={self.envelope_rule!r} is not one of {allowed}")

    def var_energy_price(self, retail_eur_per_kwh: float | np.ndarray) -> float | np.ndarray:
        """The energy price (EUR/kWh) that values a kW of loss in the Var price."""
        return retail_eur_per_kwh * self.var_price_scale


def base_injection(
    fc: DsoForecast, t: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Forecast bus injections of interval ``t`` without the prosumers' controllable power
    (``p_other``, ``q_other``: passive loads and the prosumers' reactive loads), the
    prosumers' forecast net injections and their reactive loads' injections."""
    p_other = fc.passive_p_kw[t].astype(float)
    q_other = fc.passive_q_kvar[t].astype(float).copy()
    np.add.at(q_other, fc.prosumer_bus, -fc.load_q_kvar[t])
    net_p = fc.pv_kw[t] - fc.load_kw[t]
    return p_other, q_other, net_p, -fc.load_q_kvar[t]


def publication(
    pf: RadialPowerFlow,
    fc: DsoForecast,
    t: int,
    *,
    var_market: bool,
    rules: PublicationRules,
) -> tuple[Envelopes, np.ndarray]:
    """What the DSO publishes for interval ``t`` from forecasts alone: every prosumer's
    envelope and the indicative Var price per bus (EUR/kvarh; 0 without a Var market).

    The DSO agent and the vectorised training environment's cache both call it.
    """
    p_other, q_other, net_p, _ = base_injection(fc, t)
    max_export = np.maximum(0.0, fc.pv_kw[t] + fc.battery_kw - fc.load_kw[t])
    max_import = np.maximum(0.0, fc.load_kw[t] + fc.battery_kw)
    # without a Var market the inverters run at unity power factor: range [0, 0]
    kva = fc.inverter_kva if var_market else None
    if rules.envelope_rule == EnvelopeRule.DYNAMIC:
        envelopes = compute_envelopes(
            pf,
            fc.prosumer_bus,
            p_other,
            q_other,
            max_export,
            max_import,
            fairness=rules.fairness,
            weights=fc.pv_kwp if rules.fairness == "proportional" else None,
            vm_min_pu=VM_MIN_PU,
            vm_max_pu=VM_MAX_PU,
            inverter_kva=kva,
        )
    else:
        static = rules.envelope_rule == EnvelopeRule.STATIC
        if static and fc.export_cap_kw is None:
            raise InvalidInput("envelope_rule='static' needs the forecast's export_cap_kw")
        cap = fc.export_cap_kw if static else None
        envelopes = fixed_envelopes(max_export, max_import, cap, kva)
    if not var_market:
        return envelopes, np.zeros(pf.feeder.n_bus)
    p_bus = p_other.copy()
    np.add.at(p_bus, fc.prosumer_bus, net_p)
    lsf = loss_sensitivities(pf, p_bus, q_other)
    energy_price = float(rules.var_energy_price(float(fc.retail_eur_per_kwh[t])))
    price = var_prices(lsf.dloss_dq, energy_price, signed=rules.var_pricing == "ex-post")
    return envelopes, price


class DSOAgent:
    """The distribution system operator of one feeder."""

    def __init__(
        self,
        feeder: Feeder,
        forecast: DsoForecast,
        *,
        var_market: bool,
        rules: PublicationRules,
        duration_h: float,
    ) -> None:
        self.feeder = feeder
        self.pf = RadialPowerFlow(feeder)
        self.fc = forecast
        self.var_market = var_market
        self.rules = rules
        self.duration_h = duration_h
        self.index = {pid: i for i, pid in enumerate(forecast.prosumer_ids)}
        self._seq = itertools.count()
        self.interval = -1
        self.errors: CappedList[str] = CappedList()
        #: The outcome of the last settled interval (None before the first).
        self.last_outcome: IntervalOutcome | None = None
        self.last_vm_pu: np.ndarray | None = None
        #: A publication computed ahead by :meth:`prepare`: its interval, envelopes, prices.
        self._prepared: tuple[int, Envelopes, np.ndarray] | None = None

    def _next_seq(self) -> int:
        return next(self._seq)

    def _base_injection(self, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Forecast bus injections without prosumers' controllable power, and their nets."""
        return base_injection(self.fc, t)

    def prepare(self, t: int) -> None:
        """Compute what :meth:`open_interval` publishes for ``t`` ahead of time.

        The publication depends on forecasts alone (:func:`publication`), so a clock may
        compute it while it waits on the prosumers; the result is the same.
        """
        with single_blas_thread():
            envelopes, price = self._publication(t)
        self._prepared = (t, envelopes, price)

    def _publication(self, t: int) -> tuple[Envelopes, np.ndarray]:
        return publication(self.pf, self.fc, t, var_market=self.var_market, rules=self.rules)

    def open_interval(self, t: int) -> list[Outgoing]:
        """Open interval ``t``: compute and publish envelopes and Var prices."""
        with single_blas_thread():  # small matrices: BLAS threads only contend for the cores
            return self._open_interval(t)

    def _open_interval(self, t: int) -> list[Outgoing]:
        fc = self.fc
        self.interval = t
        self.schedules: dict[str, Schedule] = {}
        self.absent: set[str] = set()
        self.envelope_violations = 0
        prepared, self._prepared = self._prepared, None
        if prepared is not None and prepared[0] == t:
            _, self.envelopes, self.var_price = prepared
        else:
            self.envelopes, self.var_price = self._publication(t)
        env = self.envelopes
        rows = tuple(
            zip(
                fc.prosumer_ids,
                env.export_kw.tolist(),
                env.import_kw.tolist(),
                env.q_min_kvar.tolist(),
                env.q_max_kvar.tolist(),
                strict=True,
            )
        )
        out: list[Outgoing] = [
            (None, self._phase_msg("open")),
            (None, EnvelopesMessage(DSO_ID, t, self._next_seq(), rows)),
        ]
        if self.var_market:
            buses = sorted({int(bus) for bus in fc.prosumer_bus})
            prices = tuple((bus, float(self.var_price[bus])) for bus in buses)
            out.append((None, VarPrices(DSO_ID, t, self._next_seq(), prices)))
        return out

    def _phase_msg(self, name: str, round_: int = 0) -> Phase:
        return Phase(DSO_ID, self.interval, self._next_seq(), name, round_)

    def phase(self, name: str, round_: int = 0) -> list[Outgoing]:
        """Open market phase ``name`` (tick ``round_`` of it), broadcast to every agent."""
        return [(None, self._phase_msg(name, round_))]

    def handle(self, msg: Message) -> list[Outgoing]:
        """Accept a prosumer's ``Schedule``; ignore public orders; refuse anything else."""
        if isinstance(msg, OBSERVED_KINDS):
            return []
        if isinstance(msg, Error):
            self.errors.append(f"{msg.sender} refused {msg.refused_kind}: {msg.reason}")
            return []
        if not isinstance(msg, Schedule):
            return self._refuse(msg, f"the DSO does not take {msg.kind} messages")
        reason = ""
        if msg.sender not in self.index:
            reason = f"unknown prosumer {msg.sender!r}"
        elif msg.interval != self.interval:
            reason = f"schedule for interval {msg.interval}, now {self.interval}"
        elif msg.sender in self.schedules:
            reason = f"duplicate schedule from {msg.sender!r}"
        elif msg.sender in self.absent:
            reason = f"{msg.sender!r} is absent from interval {self.interval}"
        if reason:
            return self._refuse(msg, reason)
        i, env, tol = self.index[msg.sender], self.envelopes, ENVELOPE_TOL_KW
        # the envelope bounds the inverter's q; the schedule's q nets the load's (forecast)
        q_inverter = msg.q_kvar + float(self.fc.load_q_kvar[self.interval, i])
        if not (
            -env.import_kw[i] - tol <= msg.p_kw <= env.export_kw[i] + tol
            and env.q_min_kvar[i] - tol <= q_inverter <= env.q_max_kvar[i] + tol
        ):
            self.envelope_violations += 1
        self.schedules[msg.sender] = msg
        return []

    def _refuse(self, msg: Message, reason: str) -> list[Outgoing]:
        self.errors.append(f"refused {msg.kind} from {msg.sender}: {reason}")
        err = Error(DSO_ID, max(self.interval, 0), self._next_seq(), msg.kind, msg.seq, reason)
        return [(msg.sender, err)]

    def mark_absent(self, prosumer: str) -> list[Outgoing]:
        """Take ``prosumer`` out of the current interval: the ``Absent`` broadcast (once).

        Its peers void their trades with it; its schedule, if one came, is dropped and a
        later one refused.
        """
        if prosumer in self.absent:
            return []
        self.absent.add(prosumer)
        self.schedules.pop(prosumer, None)
        return [(None, Absent(DSO_ID, self.interval, self._next_seq(), prosumer))]

    def settle(self) -> list[Outgoing]:
        """Run the AC power flow on the schedules and send every prosumer its settlement.

        First every prosumer without a schedule is marked absent (:meth:`mark_absent`), so
        that a relay delivering in order gives its peers the ``Absent`` before their
        ``Settlement``. An absent prosumer is taken at its forecast net injection with no
        trades, and is settled at retail for it.
        """
        out: list[Outgoing] = []
        for pid in self.fc.prosumer_ids:
            if pid not in self.schedules:
                out += self.mark_absent(pid)
        with single_blas_thread():
            return out + self._settle()

    def _settle(self) -> list[Outgoing]:
        fc, t, dt = self.fc, self.interval, self.duration_h
        p_other, _, net_p, base_q = self._base_injection(t)
        q_other = fc.passive_q_kvar[t].astype(float)
        n = len(fc.prosumer_ids)
        p_kw = net_p.astype(float).copy()
        q_kvar = base_q.astype(float).copy()
        p2p_kwh = np.zeros(n)
        present = np.zeros(n, dtype=bool)
        for pid, sch in self.schedules.items():
            i = self.index[pid]
            p_kw[i], q_kvar[i], p2p_kwh[i], present[i] = sch.p_kw, sch.q_kvar, sch.p2p_net_kwh, True
        p_bus, q_bus = p_other.copy(), q_other.copy()
        np.add.at(p_bus, fc.prosumer_bus, p_kw)
        np.add.at(q_bus, fc.prosumer_bus, q_kvar)
        retail = float(fc.retail_eur_per_kwh[t])
        # Var service: the inverter's reactive power (scheduled q above the own demand).
        q_service = var_service_kvar(q_kvar, base_q)
        if self.var_market:
            var = settle_var(
                self.pf,
                p_bus,
                q_bus,
                fc.prosumer_bus,
                q_service,
                self.rules.var_energy_price(retail),
                dt,
                pricing=self.rules.var_pricing,
                ex_ante_price_eur_per_kvarh=self.var_price[fc.prosumer_bus],
            )
            res, var_paid, loss_saved_kw = var.power_flow, var.payment_eur, float(var.loss_saved_kw)
        else:
            res, var_paid, loss_saved_kw = self.pf.solve(p_bus, q_bus), np.zeros(n), 0.0
        vm = res.vm_pu
        self.last_vm_pu = vm
        out: list[Outgoing] = []
        var_eur, own_vm_pu = (-var_paid).tolist(), vm[fc.prosumer_bus].tolist()  # plain floats
        for i, pid in enumerate(fc.prosumer_ids):
            settlement = Settlement(DSO_ID, t, self._next_seq(), pid, var_eur[i], own_vm_pu[i])
            out.append((pid, settlement))
        loss_kw = float(res.loss_kw)
        self.last_outcome = IntervalOutcome(
            interval=t,
            loss_kw=loss_kw,
            loss_cost_eur=loss_eur(loss_kw, dt, retail),
            vmin_pu=float(vm.min()),
            vmin_bus=int(vm.argmin()),
            vmax_pu=float(vm.max()),
            vmax_bus=int(vm.argmax()),
            n_voltage_violations=int(np.sum((vm < VM_MIN_PU) | (vm > VM_MAX_PU))),
            max_loading_percent=float(np.max(res.loading_percent)),
            retail_eur_per_kwh=retail,
            feed_in_eur_per_kwh=float(fc.feed_in_eur_per_kwh[t]),
            loss_saved_kw=loss_saved_kw,
            loss_saved_eur=loss_eur(loss_saved_kw, dt, retail),
            var_paid_eur=float(var_paid.sum()),
            var_service_kvarh=float(np.sum(q_service) * dt),
            p2p_volume_kwh=float(np.sum(np.maximum(p2p_kwh, 0.0))),
            envelope_violations=self.envelope_violations,
            export_envelope_feasible=bool(self.envelopes.export_feasible),
            import_envelope_feasible=bool(self.envelopes.import_feasible),
            absent_prosumers=int(n - present.sum()),
        )
        return out
