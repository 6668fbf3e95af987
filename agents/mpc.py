"""The forecast MPC: each prosumer solves its own LP over the rest of its day, every interval.

At every interval the prosumer forecasts its load and PV for the rest of the day
(:mod:`agents.forecast`, from its own past days and today's seen intervals; ``mpc-perfect``
reads the actual profiles instead) and solves one linear program over the remaining intervals,
built from the optimum's per-prosumer blocks (:mod:`agents.dispatch_lp`: battery, inverter
polygon, envelopes, tariffs, Var price, the stored energy's value at the settlement's storage
price). It acts on the first interval only; the action goes through the same plan projection as
every policy, so the envelopes remain the only security guarantee. ``docs/mpc.md`` states the
formulation.

What it knows besides its forecasts, all from its own messages and its own data:

- this interval's published envelope and Var price; for a later interval, the ones published
  for the same interval of the day when last seen (yesterday's), this interval's until then;
- the tariffs, each moved towards the expected P2P price (the mid tariff, half the network
  charge on each side) by the share of its own orders that cleared at that interval of the
  day (:meth:`MpcPolicy.energy_prices`, learnt from its settled intervals); the whole net
  position is offered at the truthful price, as the optimum's replay does;
- Var: in a Var market, while the (forecast) price is positive, the inverter may inject up
  to the prosumer's own reactive demand (local compensation, as the rule policy), paid the
  published price: a lone prosumer cannot see how its kvar move the ex-post price.

A solve that fails (HiGHS finds no optimum) falls back to the ToU rule for that interval and
says why in :attr:`MpcPolicy.fallback_reason` (counted in the run's tables). Invalid inputs (a
battery state outside its range, for one) raise :class:`agents.dispatch_lp.DispatchInputError`.
"""

from __future__ import annotations

import math

import numpy as np

from agents.dispatch_lp import DayInputs, DispatchSolveError, ProsumerLP
from agents.forecast import Forecaster, OwnForecast
from agents.outcome import ProsumerOutcome
from agents.policy import Observation, Policy, truthful_action

#: Weight of the latest settled interval in the expected share of an order that clears.
FILL_SMOOTHING = 0.5
#: Tie-break among intervals of equal price: charging an interval later costs this much more
#: per kWh (EUR), so the battery fills as early as it can (a later envelope may be tighter).
CHARGE_EARLY_EUR_PER_KWH = 1e-5
#: A state of charge this far outside ``[0, battery_kwh]`` is float noise, clipped (kWh).
SOC_TOLERANCE_KWH = 1e-6


class MpcPolicy:
    """One prosumer's MPC over the rest of each day (see the module docstring).

    ``load_kw_by_day`` and ``pv_kw_by_day`` are the prosumer's own profiles of every calendar
    day, ``(365, T)``: a forecaster reads only the days before today's and today's seen
    intervals (``forecaster=None``: ``mpc-perfect``, which reads today's actual profile).
    ``run_days`` maps a run day to its calendar day; the tariffs run over the run's intervals.
    """

    def __init__(
        self,
        *,
        forecaster: Forecaster | None,
        load_kw_by_day: np.ndarray,
        pv_kw_by_day: np.ndarray,
        run_days: tuple[int, ...],
        retail_eur_per_kwh: np.ndarray,
        feed_in_eur_per_kwh: np.ndarray,
        efficiency: float,
        storage_price_eur_per_kwh: float,
        network_charge_eur_per_kwh: float,
        duration_h: float,
        fallback: Policy,
    ) -> None:
        #: The prosumer's own forecasts (one owner with the learners' outlook).
        self.own = OwnForecast(
            forecaster=forecaster,
            load_kw_by_day=load_kw_by_day,
            pv_kw_by_day=pv_kw_by_day,
            run_days=run_days,
        )
        self.retail = np.asarray(retail_eur_per_kwh, dtype=float)
        self.feed_in = np.asarray(feed_in_eur_per_kwh, dtype=float)
        self.efficiency = efficiency
        self.storage_price = storage_price_eur_per_kwh
        self.network_charge = network_charge_eur_per_kwh
        self.duration_h = duration_h
        self.fallback = fallback
        self.steps = self.own.steps
        #: Why the last interval fell back to the fallback policy ("" when it did not).
        self.fallback_reason = ""
        self.fallbacks = 0
        self._day = -1
        self._checked_day = -1  # the last day whose first horizon was checked in full
        #: The envelope and Var price last published for each interval of the day
        #: (export, import, q_max, price); NaN until seen.
        self._published = np.full((4, self.steps), np.nan)
        #: The share of a buy and a sell order expected to clear at each interval of the day.
        self._fill = np.zeros((2, self.steps))
        #: The LP by structure and its charging tie-break costs: see :meth:`plan`.
        self._lps: dict[tuple[object, ...], tuple[ProsumerLP, np.ndarray]] = {}

    def forecasts(self, obs: Observation) -> tuple[np.ndarray, np.ndarray]:
        """Load and PV (kW) from ``obs``'s interval to the day's end, as this policy sees
        them at ``obs`` (:meth:`agents.forecast.OwnForecast.at`, the learners' outlook's
        forecasts too)."""
        load, pv = self.own.at(obs)
        self._day = obs.interval // self.steps
        return load, pv

    def horizon(self, obs: Observation) -> DayInputs:
        """The LP inputs of ``obs``'s interval to the day's end (one prosumer).

        They are checked in full (:class:`DayInputs`) at the day's first interval; at a later
        one, only where one of ``obs``'s numbers is not finite or outside its range
        (:func:`_plain`): the rest are the day's tariffs, its forecasts (the same profile
        rescaled) and envelopes seen before, checked then."""
        load, pv = self.forecasts(obs)
        t = obs.interval % self.steps
        now = (obs.export_kw, obs.import_kw, obs.q_max_kvar, obs.var_price_eur_per_kvarh)
        self._published[:, t] = now
        ahead = self._published[:, t:]
        export, imp, q_max, price = np.where(np.isnan(ahead), np.array(now)[:, None], ahead)
        q_per_kw = obs.load_q_kvar / obs.load_kw if obs.load_kw > 0 else 0.0
        local_q = np.where(price > 0, np.maximum(0.0, load * q_per_kw), 0.0)
        soc = obs.soc_kwh
        if -SOC_TOLERANCE_KWH <= soc <= obs.battery_kwh + SOC_TOLERANCE_KWH:
            soc = min(max(soc, 0.0), obs.battery_kwh)
        window = slice(obs.interval, obs.interval + len(load))
        retail, feed_in = self.energy_prices(obs, window)
        validate = self._checked_day != self._day or not _plain(obs, soc)
        day = DayInputs(
            duration_h=self.duration_h,
            load_kw=load[:, None],
            pv_kw=pv[:, None],
            export_kw=export[:, None],
            import_kw=imp[:, None],
            q_min_kvar=np.zeros((len(load), 1)),
            q_max_kvar=np.minimum(q_max, local_q)[:, None],
            var_price_eur_per_kvarh=price[:, None],
            retail_eur_per_kwh=retail,
            feed_in_eur_per_kwh=feed_in,
            inverter_kva=np.array([obs.inverter_kva]),
            battery_kwh=np.array([obs.battery_kwh]),
            battery_kw=np.array([obs.battery_kw]),
            efficiency=np.array([self.efficiency]),
            soc_start_kwh=np.array([soc]),
            storage_price_eur_per_kwh=np.array([self.storage_price]),
            network_charge_eur_per_kwh=self.network_charge,
            p2p_market=False,
            var_market=obs.var_market,
            validate=validate,
        )
        self._checked_day = self._day
        return day

    def energy_prices(self, obs: Observation, window: slice) -> tuple[np.ndarray, np.ndarray]:
        """What a kWh imported and exported is expected to cost and earn over ``window``
        (EUR/kWh): the tariffs, moved towards the P2P price (the mid tariff, each side paying
        half the network charge) by the share of its orders at that interval of the day that
        cleared when last seen (:meth:`settled`)."""
        retail, feed_in = self.retail[window], self.feed_in[window]
        if not obs.p2p_market:
            return retail, feed_in
        mid = (retail + feed_in) / 2
        half_charge = self.network_charge / 2
        fill_buy, fill_sell = self._fill[:, obs.interval % self.steps :]
        buy = retail - fill_buy * np.maximum(0.0, retail - mid - half_charge)
        sell = feed_in + fill_sell * np.maximum(0.0, mid - half_charge - feed_in)
        return buy, sell

    def settled(self, outcome: ProsumerOutcome) -> None:
        """Learn from the settled interval's own P2P order what share clears at that
        interval of the day (smoothed by :data:`FILL_SMOOTHING`)."""
        side = (
            ("buy", "sell").index(outcome.order_side)
            if outcome.order_side in ("buy", "sell")
            else -1
        )
        if side < 0 or outcome.order_kwh <= 0:
            return
        traded = outcome.p2p_bought_kwh if side == 0 else outcome.p2p_sold_kwh
        share = min(1.0, traded / outcome.order_kwh)
        t = outcome.interval % self.steps
        self._fill[side, t] += FILL_SMOOTHING * (share - self._fill[side, t])

    def plan(self, day: DayInputs) -> tuple[float, float]:
        """The first interval of the LP's plan: battery injection (kW) and inverter kvar.

        The constraint matrix depends only on the horizon's length and on whether the
        inverter's polygon is in (the prosumer's ratings are fixed), so it is built once per
        such structure; each solve sets only bounds and costs and HiGHS starts from that
        structure's last basis (:class:`agents.dispatch_lp.ProsumerLP`)."""
        key = ProsumerLP.key(day)
        if key not in self._lps:
            lp = ProsumerLP(day)
            tie_break = np.zeros(len(lp.lp.cols))
            hours = day.duration_h * np.arange(day.shape[0])[:, None]
            tie_break[lp.columns.charge] = CHARGE_EARLY_EUR_PER_KWH * hours
            self._lps[key] = lp, tie_break
        lp, tie_break = self._lps[key]
        x = lp.solve(day, tie_break)
        v = lp.columns
        return float(x[v.discharge[0, 0]] - x[v.charge[0, 0]]), float(x[v.q[0, 0]])

    def act(self, obs: Observation) -> np.ndarray:
        """The first interval of the plan as a normalised action (the ToU rule's action if
        the solve fails)."""
        day = self.horizon(obs)
        try:
            battery_p_kw, q_kvar = self.plan(day)
        except DispatchSolveError as exc:
            self.fallbacks += 1
            self.fallback_reason = f"MPC: {exc}; the ToU rule acted"
            return self.fallback.act(obs)
        self.fallback_reason = ""
        battery = battery_p_kw / obs.battery_kw if obs.battery_kw > 0 else 0.0
        q = q_kvar / obs.inverter_kva if obs.inverter_kva > 0 else 0.0
        return truthful_action(min(max(battery, -1.0), 1.0), min(max(q, -1.0), 1.0))


def _plain(obs: Observation, soc_kwh: float) -> bool:
    """Whether ``obs``'s numbers that enter the LP are finite and in their ranges (where one
    is not, :class:`DayInputs`' full check names it)."""
    nonneg = (
        obs.load_kw, obs.pv_kw, obs.export_kw, obs.import_kw, obs.q_max_kvar, obs.inverter_kva,
        obs.battery_kwh, obs.battery_kw, soc_kwh,
    )  # fmt: skip
    finite = math.isfinite(sum(nonneg) + obs.load_q_kvar + obs.var_price_eur_per_kvarh)
    return finite and min(nonneg) >= 0 and soc_kwh <= obs.battery_kwh
