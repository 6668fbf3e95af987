"""The market batched over ``B`` worlds x ``N`` prosumers, with the agent simulation's rules.

:class:`MarketVecEnv` implements :class:`agents.learning.env_protocol.VecMarketEnv`. One step
is one interval of every world, computed by the same functions the Mesa model's agents call,
on records of arrays where an agent passes records of numbers (``docs/training-env.md``):
the DSO's publication (envelopes, indicative Var prices; looked up in
:mod:`abm.envs.publication_cache`), the observation with each prosumer's outlook (its own
forecasts, :class:`agents.forecast.OwnForecast`, made once per calendar day at every
interval, then summarised by :func:`agents.outlook.outlook`: features that read no state,
computed once per day), the played action, the plan
(projection, q clipping, order), the replicated double auction's matching
(:func:`agents.clearing.batch_matching.match_batch`), the P2P totals and last price, the
batched power flow with the Var settlement, and the bill. This module holds no market rule
of its own. Only the auction protocol runs here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from abm.config import DaySet, SimConfig, market_has_p2p, market_has_var
from abm.envs.publication_cache import (
    DayPublication,
    PublicationCache,
    publication_key,
)
from abm.errors import ConfigError
from abm.inputs.mpc_policies import year_profiles
from abm.inputs.profiles import DAYS, FIT_DAYS, TEST_DAYS, TRAIN_DAYS, VALIDATION_DAYS
from abm.inputs.run_inputs import RunInputs, build_run_inputs, publication_rules
from abm.training.train_config import check_residual
from agents import settlement
from agents.actor import BASE_POLICIES, residual_action
from agents.battery import Battery
from agents.clearing.batch_matching import match_batch
from agents.forecast import OwnForecast, make_forecaster
from agents.interval import EPISODE_INTERVALS
from agents.orders import SIDE_BUY
from agents.outlook import OUTLOOK_FORECASTER, outlook
from agents.plan import plan_interval
from agents.policy import (
    ACTION_DIM,
    BASE_OBS_DIM,
    OBS_DIM,
    TRUTHFUL_PRICE,
    Observation,
    TouPolicy,
    feature_vector,
    observation_vector,
    outlook_features,
    played_actions,
    rule_q_action,
    self_consumption_battery,
)
from dso.agent import publication
from dso.blas import single_blas_thread
from dso.outcome import dso_net_eur, loss_eur
from dso.powerflow import RadialPowerFlow
from dso.var_price import settle_var, var_service_kvar


class MarketVecEnv:
    """``n_worlds`` independent worlds of one feeder's market (see the module docstring).

    ``config``: network, market mode, scenario, fairness, Var pricing and network charge of
    the market (its day fields are not used: each world's day is chosen at :meth:`reset`).
    ``base_policy`` (``rule`` or ``tou``; ``""``: none): the actions given to :meth:`step` are
    a residual policy's outputs, played as
    ``agents.actor.residual_action(baseline_actions(base_policy), actions, residual_scale)``,
    as a residual actor file does in the agent simulation.
    """

    action_dim = ACTION_DIM
    obs_dim = OBS_DIM

    def __init__(
        self,
        n_worlds: int,
        config: SimConfig | None = None,
        *,
        cache: PublicationCache | None = None,
        base_policy: str = "",
        residual_scale: float = 1.0,
        test_days: bool = True,
    ) -> None:
        cfg = config or SimConfig()
        check_residual(base_policy, residual_scale)
        self.base_policy = str(base_policy)
        self.residual_scale = float(residual_scale)
        if not isinstance(n_worlds, int) or n_worlds < 1:
            raise ConfigError(f"n_worlds={n_worlds!r} must be a positive integer")
        if cfg.protocol != "auction":
            raise ConfigError(
                f"protocol={cfg.protocol!r}: the vectorised env runs the auction only"
            )
        self.config = cfg
        self.n_worlds = n_worlds
        self.p2p_market = market_has_p2p(cfg.market)
        self.var_market = market_has_var(cfg.market)
        #: Days episodes are drawn from in training (the training days less validation).
        self.train_days: Sequence[int] = FIT_DAYS
        #: Days every choice made while training is made on.
        self.val_days: Sequence[int] = VALIDATION_DAYS
        #: The held-out test days; none in a training environment (``test_days=False``), whose
        #: calendar then holds no test day's data at all.
        self.test_days: Sequence[int] = TEST_DAYS if test_days else ()
        # every calendar day of the day sets held, as one run over each whole set
        day_sets = (DaySet.TRAIN, DaySet.TEST) if test_days else (DaySet.TRAIN,)
        some = build_run_inputs(
            dataclasses.replace(cfg, day_set=DaySet.TRAIN, first_day=0, days=len(TRAIN_DAYS))
        )
        worlds = {DaySet.TRAIN: some}
        if DaySet.TEST in day_sets:
            test = dataclasses.replace(cfg, day_set=DaySet.TEST, first_day=0, days=len(TEST_DAYS))
            worlds[DaySet.TEST] = build_run_inputs(test, feeder=some.feeder, scenario=some.scenario)
        self.feeder, self.scenario = some.feeder, some.scenario
        self.network = self.feeder.name
        self.prosumer_ids = some.prosumer_ids
        self.n_agents = len(self.prosumer_ids)
        self.n_bus = self.feeder.n_bus
        self.state_dim = self.n_agents * OBS_DIM + self.n_bus
        self.duration_h = some.duration_h
        self.n_intervals = some.scenario.intervals_per_day
        if self.n_intervals != EPISODE_INTERVALS:
            raise ConfigError(
                f"interval_min={some.scenario.interval_min}: episodes need "
                f"{EPISODE_INTERVALS} intervals a day"
            )
        self.pf = RadialPowerFlow(self.feeder)
        self.rules = publication_rules(cfg)
        self._locate = {
            int(day): (world, k * self.n_intervals)
            for world in worlds.values()
            for k, day in enumerate(world.days)
        }
        self._calendar = _CalendarData.of(list(worlds.values()), self.n_intervals)
        pros = self.scenario.prosumers
        self.bus = np.asarray(some.forecast.prosumer_bus, dtype=np.int64)
        self.capacity_kwh = np.array([p.battery_kwh for p in pros], dtype=float)
        self.battery_kw = np.array([p.battery_kw for p in pros], dtype=float)
        self.efficiency = np.array([p.battery_efficiency for p in pros], dtype=float)
        self.inverter_kva = np.array([p.inverter_kva for p in pros], dtype=float)
        self.initial_soc_kwh = np.array(
            [p.initial_soc_fraction * p.battery_kwh for p in pros], dtype=float
        )
        self.battery = Battery(self.capacity_kwh, self.battery_kw, self.efficiency)
        self.incidence = np.zeros((self.n_agents, self.n_bus))
        self.incidence[np.arange(self.n_agents), self.bus] = 1.0
        self.cache_key = publication_key(
            self.feeder,
            self.scenario,
            var_market=self.var_market,
            rules=self.rules,
            export_cap_kw=some.forecast.export_cap_kw,
        )
        self.cache = cache or PublicationCache(self.cache_key, self.compute_day)
        self._tou = TouPolicy(self.scenario.tariffs.retail_eur_per_kwh)
        load, pv = year_profiles(self.scenario)
        self._forecast = OwnForecast(
            forecaster=make_forecaster(OUTLOOK_FORECASTER), load_kw_by_day=load, pv_kw_by_day=pv
        )
        self.pv_kwp = np.array([p.pv_kwp for p in pros], dtype=float)
        #: The outlook features of every calendar day, interval and prosumer (float32),
        #: filled when a day is first played (:meth:`day_outlook`).
        shape = (DAYS, self.n_intervals, self.n_agents, OBS_DIM - BASE_OBS_DIM)
        self._outlook = np.zeros(shape, np.float32)
        self._outlook_days: set[int] = set()

    # -- the publication of a day (cache misses) ------------------------------------------
    def compute_day(self, day: int) -> DayPublication:
        """The publication of calendar ``day`` by :func:`dso.agent.publication` (uncached)."""
        world, start = self._locate[day]
        rows = []
        with single_blas_thread():
            for t in range(start, start + self.n_intervals):
                env, price = publication(
                    self.pf,
                    world.forecast,
                    t,
                    var_market=self.var_market,
                    rules=self.rules,
                )
                rows.append(
                    (env.export_kw, env.import_kw, env.q_min_kvar, env.q_max_kvar, price[self.bus])
                )
        return DayPublication(
            *(np.array(column, dtype=float) for column in zip(*rows, strict=True))
        )

    def run_inputs_of(self, day: int) -> tuple[RunInputs, int]:
        """The run inputs holding calendar ``day`` and the day's index in that run (the
        optimum's LP of the day reads them)."""
        self._check_held([day])
        world, start = self._locate[day]
        return world, start // self.n_intervals

    def _check_held(self, days: Sequence[int]) -> None:
        """Refuse, in one line, a day this environment does not hold."""
        bad = [d for d in days if d not in self._locate]
        if bad and bad[0] in TEST_DAYS:
            raise ConfigError(
                f"days={bad[0]!r} is a test day, and this environment holds none "
                "(a training environment never reads the test days)"
            )
        if bad:
            raise ConfigError(f"days={bad[0]!r} is not a calendar day 0..364")

    def day_outlook(self, day: int) -> np.ndarray:
        """The outlook features of every interval of calendar ``day``, ``(T, N, K)``: every
        prosumer's own forecasts made at each interval, summarised
        (:func:`agents.outlook.outlook`) and normalised (:func:`agents.policy.outlook_features`,
        which reads no state), computed when the day is first played."""
        if day not in self._outlook_days:
            load, pv = self._forecast.day(day)  # (T, T, N) each
            cal, steps = self._calendar, self.n_intervals
            for t in range(steps):
                ahead = outlook(
                    load_ahead_kw=load[t, t + 1 :],
                    pv_ahead_kw=pv[t, t + 1 :],
                    retail_ahead_eur_per_kwh=cal.retail[day, t:, None],
                    pv_kwp=self.pv_kwp,
                    duration_h=self.duration_h,
                    interval_of_day=t,
                    intervals_per_day=steps,
                )
                now = _Now(
                    load_kw=cal.load_kw[day, t],
                    pv_kw=cal.pv_kw[day, t],
                    battery_kwh=self.capacity_kwh,
                    battery_kw=self.battery_kw,
                    inverter_kva=self.inverter_kva,
                )
                self._outlook[day, t] = feature_vector(outlook_features(now, ahead))
            self._outlook_days.add(day)
        return self._outlook[day]

    # -- the contract ---------------------------------------------------------------------
    def reset(self, seed: int, days: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Start one day in every world: ``days`` (calendar days, one per world) or, if None,
        a training day drawn by each world's own generator (spawned from ``seed``)."""
        b = self.n_worlds
        if days is None:
            rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(b)]
            pool = np.asarray(self.train_days)
            chosen = [int(rng.choice(pool)) for rng in rngs]
        else:
            chosen = [int(d) for d in days]
            if len(chosen) != b:
                raise ConfigError(f"days has {len(chosen)} entries for n_worlds={b}")
            self._check_held(chosen)
        self.days = np.array(chosen, dtype=np.int64)
        pubs = [self.cache.day(d) for d in chosen]
        self._pub = DayPublication(
            *(
                np.stack([getattr(p, f.name) for p in pubs])
                for f in dataclasses.fields(DayPublication)
            )
        )
        self._day = self._calendar.select(self.days)
        for d in set(chosen):
            self.day_outlook(d)
        self.t = 0
        self.soc_kwh = np.broadcast_to(self.initial_soc_kwh, (b, self.n_agents)).copy()
        first_price = np.asarray(
            settlement.initial_price_eur_per_kwh(self._day.retail[:, 0], self._day.feed_in[:, 0])
        )
        self.last_price = np.broadcast_to(first_price[:, None], self.soc_kwh.shape).copy()
        self.last_vm = np.ones((b, self.n_agents))
        self.last_vm_bus = np.ones((b, self.n_bus))
        self.storage_price = settlement.storage_price_eur_per_kwh(
            self.efficiency, self._day.retail[:, None, :]
        )
        obs = self._observe()
        return obs, self._state(obs)

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """One interval of every world; see ``docs/training-env.md`` for what it computes."""
        b, n, t, dt = self.n_worlds, self.n_agents, self.t, self.duration_h
        if t >= self.n_intervals:
            raise ConfigError("step after the episode ended: call reset")
        a = np.asarray(actions)
        if a.shape != (b, n, ACTION_DIM):
            raise ConfigError(f"actions shape {a.shape}, expected {(b, n, ACTION_DIM)}")
        if self.base_policy:
            a = residual_action(self.baseline_actions(self.base_policy), a, self.residual_scale)
        # as the PettingZoo env: float32 actions
        action, abstained = played_actions(a.astype(np.float32))
        day, pub, obs = self._day, self._pub, self._obs
        charge = self.config.network_charge_eur_per_kwh
        # decide: the plan and the order
        plan = plan_interval(action, obs, self.battery, dt, charge)
        p_kw = np.asarray(plan.p_kw)
        trades = settlement.P2PTotals(*(np.zeros((b, n)) for _ in range(4)))
        price = np.zeros(b)
        if self.p2p_market:
            matches = match_batch(
                np.asarray(plan.order_side) == SIDE_BUY,
                np.asarray(plan.order_kwh),
                np.asarray(plan.limit_price_eur_per_kwh),
                self.prosumer_ids,
            )
            price = matches.price_eur_per_kwh
            trades = settlement.p2p_totals(
                matches.world * n + matches.buyer,
                matches.world * n + matches.seller,
                matches.quantity_kwh,
                price[matches.world],
                (b, n),
            )
            self.last_price = np.asarray(settlement.last_price_eur_per_kwh(trades, self.last_price))
        # schedule
        self.soc_kwh = np.asarray(plan.next_soc_kwh)
        q_kvar = np.asarray(plan.q_kvar)
        # settle: the power flow, the Var settlement, the bill
        load_q, retail = day.load_q_kvar[:, t], day.retail[:, t]
        p_bus = day.passive_p_kw[:, t] + p_kw @ self.incidence
        q_bus = day.passive_q_kvar[:, t] + q_kvar @ self.incidence
        with single_blas_thread():
            if self.var_market:
                var = settle_var(
                    self.pf, p_bus, q_bus, self.bus, var_service_kvar(q_kvar, -load_q),
                    self.rules.var_energy_price(retail), dt,
                    pricing=self.rules.var_pricing,
                    ex_ante_price_eur_per_kvarh=pub.var_price_eur_per_kvarh[:, t],
                )  # fmt: skip
                res, var_paid, loss_saved_kw = var.power_flow, var.payment_eur, var.loss_saved_kw
            else:
                res, var_paid, loss_saved_kw = (
                    self.pf.solve(p_bus, q_bus),
                    np.zeros((b, n)),
                    np.zeros(b),
                )
        vm = res.vm_pu
        self.last_vm_bus = vm
        self.last_vm = vm[:, self.bus]
        last = t == self.n_intervals - 1
        storage = settlement.final_storage_eur(
            last, self.initial_soc_kwh, self.soc_kwh, self.storage_price
        )
        bill = settlement.settle_bill(p_kw, trades, -var_paid, obs, charge, storage, dt)
        bill_eur = np.asarray(bill.bill_eur)
        network_eur = np.asarray(bill.network_eur).sum(axis=1)
        loss_saved_eur = loss_eur(np.asarray(loss_saved_kw), dt, retail)
        info: dict[str, Any] = {
            "interval": t,
            "p2p_price_eur_per_kwh": price,
            "p2p_volume_kwh": trades.sold_kwh.sum(axis=1),
            "loss_kw": np.asarray(res.loss_kw),
            "loss_saved_kw": loss_saved_kw,
            "vm_pu": vm,
            "var_paid_eur": var_paid.sum(axis=1),
            "p2p_network_charge_eur": network_eur,
            "retail_paid_eur": np.asarray(bill.retail_eur).sum(axis=1),
            "dso_net_eur": dso_net_eur(loss_saved_eur, network_eur, var_paid.sum(axis=1)),
            "soc_kwh": self.soc_kwh,
            "p_kw": p_kw,
            "q_kvar": q_kvar,
            "bill": bill,
            "bought_kwh": trades.bought_kwh,
            "sold_kwh": trades.sold_kwh,
            "abstained": abstained,
        }
        if self.p2p_market:
            info["matches"] = matches
        self.t = t + 1
        done = np.full(b, self.t >= self.n_intervals)
        obs_out = self._observe() if not last else np.zeros((b, n, OBS_DIM), np.float32)
        return obs_out, self._state(obs_out), -bill_eur, done, info

    # -- the baseline policies, batched ---------------------------------------------------
    def baseline_actions(self, policy: str) -> np.ndarray:
        """Actions ``[B, N, 4]`` of the baseline ``policy`` (``rule`` or ``tou``, as
        :class:`agents.policy.RulePolicy` and :class:`agents.policy.TouPolicy` compute them
        for one prosumer, by the same functions) at the current interval."""
        if not policy or policy not in BASE_POLICIES:
            raise ConfigError(f"policy={policy!r}: batched baselines are {BASE_POLICIES[1:]}")
        if self.t >= self.n_intervals:
            raise ConfigError("baseline_actions after the episode ended: call reset")
        t, day, pub = self.t, self._day, self._pub
        battery = self_consumption_battery(day.load_kw[:, t], day.pv_kw[:, t], self.battery_kw)
        if policy == "tou":
            hour = int(day.hour_of_day[t]) % len(self._tou.hold)
            battery = self._tou.battery(hour, battery, self.battery_kw)
        q = rule_q_action(
            day.load_q_kvar[:, t],
            self.inverter_kva,
            pub.var_price_eur_per_kvarh[:, t],
            self.var_market,
        )
        actions = np.empty((self.n_worlds, self.n_agents, ACTION_DIM), dtype=np.float32)
        actions[..., 0], actions[..., 1] = battery, 1.0
        actions[..., 2], actions[..., 3] = TRUTHFUL_PRICE, q
        return actions

    # -- observations ----------------------------------------------------------------------
    def _observe(self) -> np.ndarray:
        """Every world's observation of the current interval: the record (kept for
        :meth:`step`) and its features."""
        t, day, pub = self.t, self._day, self._pub
        self._obs = Observation(
            hour_of_day=float(day.hour_of_day[t]),
            load_kw=day.load_kw[:, t],
            load_q_kvar=day.load_q_kvar[:, t],
            pv_kw=day.pv_kw[:, t],
            soc_kwh=self.soc_kwh,
            battery_kwh=self.battery.capacity_kwh,
            battery_kw=self.battery.power_kw,
            inverter_kva=self.inverter_kva,
            export_kw=pub.export_kw[:, t],
            import_kw=pub.import_kw[:, t],
            q_min_kvar=pub.q_min_kvar[:, t],
            q_max_kvar=pub.q_max_kvar[:, t],
            var_price_eur_per_kvarh=pub.var_price_eur_per_kvarh[:, t],
            retail_eur_per_kwh=day.retail[:, t, None],
            feed_in_eur_per_kwh=day.feed_in[:, t, None],
            last_price_eur_per_kwh=self.last_price,
            last_vm_pu=self.last_vm,
            p2p_market=self.p2p_market,
            var_market=self.var_market,
        )
        return np.concatenate([observation_vector(self._obs), self._outlook[self.days, t]], -1)

    def _state(self, obs: np.ndarray) -> np.ndarray:
        """Global state: every agent's observation (agent order), then the last bus voltages."""
        flat = obs.reshape(self.n_worlds, self.n_agents * OBS_DIM)
        return np.concatenate([flat, self.last_vm_bus.astype(np.float32)], axis=1)


@dataclasses.dataclass(frozen=True)
class _Now:
    """What the outlook features read of an interval's observation
    (:class:`agents.policy.ProsumerNow`), for every prosumer."""

    load_kw: np.ndarray
    pv_kw: np.ndarray
    battery_kwh: np.ndarray
    battery_kw: np.ndarray
    inverter_kva: np.ndarray


@dataclasses.dataclass(frozen=True)
class _CalendarData:
    """Per-day inputs of the prosumers and the passive loads, indexed by calendar day."""

    hour_of_day: np.ndarray  # (T,)
    load_kw: np.ndarray  # (D, T, N)
    load_q_kvar: np.ndarray
    pv_kw: np.ndarray
    passive_p_kw: np.ndarray  # (D, T, n_bus), injection of passive loads and generators
    passive_q_kvar: np.ndarray
    retail: np.ndarray  # (D, T)
    feed_in: np.ndarray

    @classmethod
    def of(cls, worlds: Sequence[RunInputs], steps: int) -> _CalendarData:
        """The calendar days of ``worlds`` (runs over whole day sets), ``steps`` a day."""
        n_days = 1 + max(d for w in worlds for d in w.days)
        first = worlds[0]
        out: dict[str, np.ndarray] = {}
        names = {
            "load_kw": "load_kw", "load_q_kvar": "load_q_kvar", "pv_kw": "pv_kw",
            "passive_p_kw": "passive_p_kw", "passive_q_kvar": "passive_q_kvar",
            "retail": "retail_eur_per_kwh", "feed_in": "feed_in_eur_per_kwh",
        }  # fmt: skip
        for name, source in names.items():
            sample = getattr(first.forecast, source)
            out[name] = np.zeros((n_days, steps, *sample.shape[1:]))
            for w in worlds:
                values = getattr(w.forecast, source)
                out[name][list(w.days)] = values.reshape(len(w.days), steps, *values.shape[1:])
        hours = first.series[first.prosumer_ids[0]].hour_of_day[:steps]
        return cls(hour_of_day=np.asarray(hours, dtype=float), **out)

    def select(self, days: np.ndarray) -> _CalendarData:
        """The rows of ``days`` (one per world)."""
        return dataclasses.replace(
            self,
            **{
                f.name: getattr(self, f.name)[days]
                for f in dataclasses.fields(self)
                if f.name != "hour_of_day"
            },
        )
