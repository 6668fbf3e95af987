"""The perfect-foresight optimum: every prosumer of a feeder dispatched together, day-ahead.

One linear program per simulated day over all prosumers and intervals (solved by HiGHS
through :func:`scipy.optimize.milp`, all variables continuous) minimises the prosumers' total
bill under the DSO's published envelopes (:func:`dso.agent.publication`, the same the
market run publishes), the inverters' ratings, the batteries and the tariffs;
``docs/optimum.md`` states the formulation. Its dispatch is then played through the real
market (the ``optimum`` policy, :class:`agents.replay.ReplayPolicy`), so the real AC power
flow and market rules settle it.

What the LP takes from the settlement rules (never a second copy):

- retail and feed-in tariffs on the residual, the whole P2P network charge per traded kWh
  (both halves, :mod:`agents.settlement`) and the storage value of the battery's energy at
  the end of the day (:func:`agents.settlement.storage_price_eur_per_kwh`, the run's price);
- Var: the published indicative price at each prosumer's bus (:func:`dso.agent.publication`).
  Ex-ante it is what is paid per injected kvarh, so the Var term is exact. Ex-post the DSO
  pays the marginal loss value at the *settled* point, ``-lambda dL/dq(q) q``; the LP models
  the loss as the exact gradient at the forecast point plus the DistFlow curvature of the
  reactive line flows, ``L(q) ~ L(0) + g q + sum_l h_l S_l**2`` (``S_l`` the inverters'
  reactive injection below line ``l``, ``h_l = r_l / |V_l|**2``), so the Var cost is the
  convex ``lambda dt (g q + 2 sum_l h_l S_l**2)``, each square by tangent cuts.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.optimize
import scipy.sparse

from abm.config import market_has_p2p, market_has_var
from abm.errors import AbmError
from agents.policy_registry import PolicyMaker
from agents.replay import ReplayPolicy
from agents.settlement import storage_price_eur_per_kwh
from analysis.tables import OPTIMUM_TABLES
from dso.agent import DsoForecast, base_injection, publication
from dso.blas import single_blas_thread
from dso.powerflow import KW_PER_PU, RadialPowerFlow
from dso.var_price import VarPricing

if TYPE_CHECKING:
    from abm.inputs.run_inputs import RunInputs

#: Sides of the inscribed polygon that stands for the capability circle p**2 + q**2 <= s**2
#: (a vertex on each axis, so the full rating stays available at unity power factor).
CAPABILITY_SIDES = 16
#: Tangent points of each line's squared reactive flow (over its reachable range) in the
#: first solve; each further round adds a tangent at the solution's flow where the cuts
#: still underestimate its square, until the Var cost they miss is below CUT_GAP_EUR.
TANGENT_POINTS = 17
MAX_CUT_ROUNDS = 6
CUT_GAP_EUR = 0.01
#: Penalty on an import above the envelope that the battery cannot avoid (load is never
#: shed; the plan reports it as ``import_violation_kw``), EUR/kWh.
IMPORT_VIOLATION_PENALTY_EUR_PER_KWH = 10.0
#: Tie-break against curtailing PV that has no value (EUR/kWh).
CURTAILMENT_TIE_BREAK_EUR_PER_KWH = 1e-6


class OptimumError(AbmError):
    """The optimum's inputs are invalid, or its linear program has no solution."""


@dataclass(frozen=True)
class DayInputs:
    """One day of the LP: ``(T, N)`` per interval and prosumer, ``(T,)``, ``(N,)`` as noted."""

    duration_h: float
    load_kw: np.ndarray  # (T, N) demand
    pv_kw: np.ndarray  # (T, N) available PV
    export_kw: np.ndarray  # (T, N) envelope
    import_kw: np.ndarray  # (T, N)
    q_min_kvar: np.ndarray  # (T, N) envelope of the inverter's q (<= 0; 0 without Var market)
    q_max_kvar: np.ndarray  # (T, N)
    var_price_eur_per_kvarh: np.ndarray  # (T, N) published price at the prosumer's bus
    retail_eur_per_kwh: np.ndarray  # (T,)
    feed_in_eur_per_kwh: np.ndarray  # (T,)
    inverter_kva: np.ndarray  # (N,)
    battery_kwh: np.ndarray  # (N,)
    battery_kw: np.ndarray  # (N,)
    efficiency: np.ndarray  # (N,) one-way
    soc_start_kwh: np.ndarray  # (N,)
    storage_price_eur_per_kwh: np.ndarray  # (N,) value of a kWh left in the battery
    network_charge_eur_per_kwh: float
    p2p_market: bool
    var_market: bool
    #: ex-post Var only: ``below[l, k] = 1`` if prosumer ``k`` is downstream of line ``l``
    #: and each line's loss curvature ``h_l`` (kW per kvar**2), ``(T, L)``; None otherwise.
    below: np.ndarray | None = None
    curvature_kw_per_kvar2: np.ndarray | None = None
    #: ex-post Var only: the energy price that values a kW of loss in the Var settlement,
    #: ``(T,)`` (:meth:`dso.agent.PublicationRules.var_energy_price`); None otherwise.
    var_energy_eur_per_kwh: np.ndarray | None = None

    def __post_init__(self) -> None:
        t, n = np.shape(self.load_kw)
        shapes = {
            "load_kw": (t, n), "pv_kw": (t, n), "export_kw": (t, n), "import_kw": (t, n),
            "q_min_kvar": (t, n), "q_max_kvar": (t, n), "var_price_eur_per_kvarh": (t, n),
            "retail_eur_per_kwh": (t,), "feed_in_eur_per_kwh": (t,), "inverter_kva": (n,),
            "battery_kwh": (n,), "battery_kw": (n,), "efficiency": (n,), "soc_start_kwh": (n,),
            "storage_price_eur_per_kwh": (n,),
        }  # fmt: skip
        for name, shape in shapes.items():
            value = np.asarray(getattr(self, name), dtype=float)
            if value.shape != shape:
                raise OptimumError(f"{name} has shape {value.shape}, expected {shape}")
            if not np.isfinite(value).all():
                raise OptimumError(f"{name} holds a value that is not finite")
        nonneg = ("load_kw", "pv_kw", "export_kw", "import_kw", "q_max_kvar", "inverter_kva")
        for name in (*nonneg, "battery_kwh", "battery_kw", "soc_start_kwh"):
            _refuse_where(name, getattr(self, name), np.asarray(getattr(self, name)) < 0, ">= 0")
        _refuse_where("q_min_kvar", self.q_min_kvar, np.asarray(self.q_min_kvar) > 0, "<= 0")
        eff = np.asarray(self.efficiency, dtype=float)
        _refuse_where("efficiency", eff, (eff <= 0) | (eff > 1), "in (0, 1]")
        over = np.asarray(self.soc_start_kwh) > np.asarray(self.battery_kwh) + 1e-9
        _refuse_where("soc_start_kwh", self.soc_start_kwh, over, "<= battery_kwh")
        if not (math.isfinite(self.duration_h) and self.duration_h > 0):
            raise OptimumError(f"duration_h = {self.duration_h!r} must be > 0")
        charge = self.network_charge_eur_per_kwh
        if not (math.isfinite(charge) and charge >= 0):
            raise OptimumError(f"network_charge_eur_per_kwh = {charge!r} must be >= 0")

    @property
    def shape(self) -> tuple[int, int]:
        """``(T, N)``: intervals and prosumers."""
        t, n = np.shape(self.load_kw)
        return int(t), int(n)


def _refuse_where(name: str, values: object, bad: np.ndarray, rule: str) -> None:
    """:class:`OptimumError` naming the first element of ``values`` where ``bad`` holds."""
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        value = float(np.asarray(values, dtype=float)[where])
        raise OptimumError(f"{name}{list(where)} = {value!r}: must be {rule}")


@dataclass(frozen=True)
class DayDispatch:
    """The LP's optimal dispatch of one day, ``(T, N)`` (kW, kvar, kWh; injection > 0)."""

    battery_p_kw: np.ndarray
    pv_used_kw: np.ndarray
    p_kw: np.ndarray  # net injection at the bus: pv_used - load + battery
    q_inverter_kvar: np.ndarray
    soc_kwh: np.ndarray  # after each interval
    import_violation_kw: np.ndarray
    p2p_kwh: np.ndarray  # (T,) P2P volume the LP counts on (all crossing energy)
    cost_eur: float  # the LP's total bill of the day, storage term included
    solve_s: float
    n_variables: int
    n_constraints: int


class _Columns:
    """Column indices of the LP's variables, laid out block after block."""

    def __init__(self) -> None:
        self.n = 0

    def block(self, *shape: int) -> np.ndarray:
        """The indices of ``prod(shape)`` new variables, in that shape."""
        size = int(np.prod(shape))
        cols = np.arange(self.n, self.n + size).reshape(shape)
        self.n += size
        return cols


class _Rows:
    """Sparse constraint rows ``lo <= sum(val * x[col]) <= hi`` collected in COO form."""

    def __init__(self) -> None:
        self.rows: list[np.ndarray] = []
        self.cols: list[np.ndarray] = []
        self.vals: list[np.ndarray] = []
        self.lo: list[np.ndarray] = []
        self.hi: list[np.ndarray] = []
        self.n = 0

    def add(
        self,
        terms: Sequence[tuple[np.ndarray, np.ndarray | float]],
        lo: np.ndarray | float,
        hi: np.ndarray | float,
    ) -> None:
        """One row per element of the broadcast terms (column array, coefficient)."""
        shape = np.broadcast_shapes(
            *(np.shape(c) for c, _ in terms), *(np.shape(v) for _, v in terms),
            np.shape(lo), np.shape(hi),
        )  # fmt: skip
        count = int(np.prod(shape))
        row = self.n + np.arange(count)
        for cols, vals in terms:
            self.rows.append(row)
            self.cols.append(np.broadcast_to(cols, shape).reshape(-1))
            self.vals.append(np.broadcast_to(np.asarray(vals, dtype=float), shape).reshape(-1))
        self.lo.append(np.broadcast_to(np.asarray(lo, dtype=float), shape).reshape(-1))
        self.hi.append(np.broadcast_to(np.asarray(hi, dtype=float), shape).reshape(-1))
        self.n += count

    def constraint(self, n_cols: int) -> scipy.optimize.LinearConstraint:
        """Every row so far as one sparse constraint over ``n_cols`` variables."""
        matrix = scipy.sparse.csr_array(
            (np.concatenate(self.vals), (np.concatenate(self.rows), np.concatenate(self.cols))),
            shape=(self.n, n_cols),
        )
        return scipy.optimize.LinearConstraint(
            matrix, np.concatenate(self.lo), np.concatenate(self.hi)
        )


def solve_day(day: DayInputs) -> DayDispatch:
    """The dispatch of minimum total bill for one day (formulation: ``docs/optimum.md``)."""
    start = time.perf_counter()
    t_n, n = day.shape
    dt = day.duration_h
    eta = np.asarray(day.efficiency, float)
    s_kva = np.asarray(day.inverter_kva, float)
    retail = np.asarray(day.retail_eur_per_kwh, float)
    feed_in = np.asarray(day.feed_in_eur_per_kwh, float)
    var = day.var_market
    q_lo = np.minimum(0.0, np.maximum(day.q_min_kvar, -s_kva)) if var else np.zeros((t_n, n))
    q_hi = np.maximum(0.0, np.minimum(day.q_max_kvar, s_kva)) if var else np.zeros((t_n, n))
    has_battery = (np.asarray(day.battery_kwh) > 0) & (np.asarray(day.battery_kw) > 0)
    power = np.where(has_battery, day.battery_kw, 0.0)

    cols = _Columns()
    pv, charge, discharge, soc = (cols.block(t_n, n) for _ in range(4))
    export, imp, violation, q = (cols.block(t_n, n) for _ in range(4))
    p2p_gain = retail - feed_in - day.network_charge_eur_per_kwh  # EUR per matched kWh
    trades = day.p2p_market and bool((p2p_gain > 0).any())
    matched = cols.block(t_n) if trades else np.zeros(0, dtype=int)
    quadratic = var and day.below is not None and day.curvature_kw_per_kvar2 is not None
    lines = np.zeros(0, dtype=int)
    if quadratic:
        assert day.below is not None  # for mypy: checked just above
        span = (q_hi - q_lo) @ np.asarray(day.below, float).T  # (T, L) reachable range
        lines = np.flatnonzero((span > 0).any(axis=0))
    flow = cols.block(t_n, len(lines))  # S: the inverters' q below each line
    flow_sq = cols.block(t_n, len(lines))  # its square, from below by tangent cuts

    lower = np.zeros(cols.n)
    upper = np.full(cols.n, np.inf)
    upper[pv] = day.pv_kw
    upper[charge] = power
    upper[discharge] = power
    upper[soc] = np.where(has_battery, day.battery_kwh, 0.0)
    upper[export] = day.export_kw
    lower[q], upper[q] = q_lo, q_hi
    if trades:
        upper[matched] = np.where(p2p_gain > 0, np.inf, 0.0)

    cost = np.zeros(cols.n)
    cost[export] = -feed_in[:, None] * dt
    cost[imp] = retail[:, None] * dt
    cost[violation] = IMPORT_VIOLATION_PENALTY_EUR_PER_KWH * dt
    cost[pv] = -CURTAILMENT_TIE_BREAK_EUR_PER_KWH * dt
    cost[q] = -np.asarray(day.var_price_eur_per_kvarh, float) * dt
    cost[soc[-1]] = -np.asarray(day.storage_price_eur_per_kwh, float)
    constant = float(np.dot(day.storage_price_eur_per_kwh, day.soc_start_kwh))
    if trades:
        cost[matched] = -np.maximum(p2p_gain, 0.0) * dt

    rows = _Rows()
    # power balance: pv_used + discharge - charge - load = export - import
    rows.add([(pv, 1.0), (discharge, 1.0), (charge, -1.0), (export, -1.0), (imp, 1.0)],
             day.load_kw, day.load_kw)  # fmt: skip
    rows.add([(imp, 1.0), (violation, -1.0)], -np.inf, day.import_kw)
    # state of charge: soc_t = soc_{t-1} + eta dt charge - dt / eta discharge
    previous = np.vstack([np.full((1, n), -1), soc[:-1]])
    rows.add([(soc[0], 1.0), (charge[0], -eta * dt), (discharge[0], dt / eta)],
             day.soc_start_kwh, day.soc_start_kwh)  # fmt: skip
    if t_n > 1:
        rows.add([(soc[1:], 1.0), (previous[1:], -1.0), (charge[1:], -eta * dt),
                  (discharge[1:], dt / eta)], 0.0, 0.0)  # fmt: skip
    # the inverter carries PV and battery: |p_inv| <= s, and (p_inv, q) in the polygon
    p_inv = [(pv, 1.0), (discharge, 1.0), (charge, -1.0)]
    rows.add(p_inv, -s_kva, s_kva)
    if var and (q_hi - q_lo > 0).any():
        for j in range(CAPABILITY_SIDES):
            angle = (2 * j + 1) * math.pi / CAPABILITY_SIDES
            terms = [(c, v * math.cos(angle)) for c, v in p_inv] + [(q, math.sin(angle))]
            rows.add(terms, -np.inf, s_kva * math.cos(math.pi / CAPABILITY_SIDES))
    if trades:  # matched P2P energy: at most what sellers export and buyers import
        for side in (export, imp):
            rows.add([(matched, 1.0)] + [(side[:, k], -1.0) for k in range(n)], -np.inf, 0.0)
    if quadratic:
        assert day.below is not None and day.curvature_kw_per_kvar2 is not None  # for mypy
        assert day.var_energy_eur_per_kwh is not None
        below = np.asarray(day.below, float)[lines]
        for i in range(len(lines)):
            members = np.flatnonzero(below[i] > 0)
            rows.add([(flow[:, i], 1.0)] + [(q[:, k], -1.0) for k in members], 0.0, 0.0)
        lower[flow], upper[flow] = q_lo @ below.T, q_hi @ below.T
        cost[flow_sq] = (
            2.0
            * np.asarray(day.curvature_kw_per_kvar2)[:, lines]
            * (np.asarray(day.var_energy_eur_per_kwh, float) * dt)[:, None]
        )
        share = np.linspace(0.0, 1.0, TANGENT_POINTS)
        span = upper[flow] - lower[flow]
        _tangent_cuts(rows, flow, flow_sq, lower[flow][..., None] + span[..., None] * share)

    x, fun = _solve(cost, rows, lower, upper)
    missed_eur = cost[flow_sq] * (x[flow] ** 2 - x[flow_sq])  # Var cost the cuts miss
    for _ in range(MAX_CUT_ROUNDS if quadratic else 0):
        if missed_eur.sum() <= CUT_GAP_EUR:
            break
        points = np.where(missed_eur > 0, x[flow], np.nan)[..., None]
        _tangent_cuts(rows, flow, flow_sq, points)
        x, fun = _solve(cost, rows, lower, upper)
        missed_eur = cost[flow_sq] * (x[flow] ** 2 - x[flow_sq])
    battery = x[discharge] - x[charge]
    return DayDispatch(
        battery_p_kw=battery,
        pv_used_kw=x[pv],
        p_kw=x[pv] + battery - np.asarray(day.load_kw, float),
        q_inverter_kvar=x[q],
        soc_kwh=x[soc],
        import_violation_kw=x[violation],
        p2p_kwh=x[matched] * dt if trades else np.zeros(t_n),
        # the modelled bill: the tie-break is no cost, the squares' missed part is
        cost_eur=fun
        + constant
        + CURTAILMENT_TIE_BREAK_EUR_PER_KWH * dt * float(x[pv].sum())
        + float(missed_eur.sum()),
        solve_s=time.perf_counter() - start,
        n_variables=cols.n,
        n_constraints=rows.n,
    )


def _tangent_cuts(rows: _Rows, flow: np.ndarray, flow_sq: np.ndarray, points: np.ndarray) -> None:
    """``flow_sq >= 2 a flow - a**2`` at the tangent points ``points`` (``flow``'s shape plus
    one axis; NaN: no cut)."""
    t_idx, l_idx, j_idx = np.nonzero(np.isfinite(points))
    a = points[t_idx, l_idx, j_idx]
    rows.add([(flow[t_idx, l_idx], 2.0 * a), (flow_sq[t_idx, l_idx], -1.0)], -np.inf, a * a)


def _solve(
    cost: np.ndarray, rows: _Rows, lower: np.ndarray, upper: np.ndarray
) -> tuple[np.ndarray, float]:
    """Solve the LP with HiGHS; the solution and its objective."""
    result = scipy.optimize.milp(
        cost,
        constraints=rows.constraint(len(cost)),
        bounds=scipy.optimize.Bounds(lower, upper),
        options={"presolve": True},
    )
    if result.status != 0 or result.x is None:
        raise OptimumError(f"the optimum's linear program failed: {result.message}")
    return result.x, float(result.fun)


@dataclass(frozen=True)
class RunDispatch:
    """The optimum of a whole run: each day's :class:`DayDispatch`, in run order."""

    days: tuple[int, ...]  # calendar days
    day_dispatch: tuple[DayDispatch, ...]
    publish_s: tuple[float, ...]  # per day: envelopes and Var prices (the DSO's forecasts)

    def column(self, name: str) -> np.ndarray:
        """A per-interval field over the run, ``(T_run, N)`` (or ``(T_run,)``)."""
        return np.concatenate([getattr(d, name) for d in self.day_dispatch], axis=0)


def day_inputs(
    world: RunInputs, pf: RadialPowerFlow, day_index: int, soc_start_kwh: np.ndarray
) -> DayInputs:
    """The LP inputs of the run's day ``day_index`` from the DSO's publication of its
    intervals (the forecasts are perfect, so these are the envelopes the market will see)."""
    config, fc = world.config, world.forecast
    steps = world.scenario.intervals_per_day
    intervals = range(day_index * steps, (day_index + 1) * steps)
    var = market_has_var(config.market)
    from abm.inputs.run_inputs import publication_rules  # abm.inputs.run_inputs imports this module

    rules = publication_rules(config)
    published = [publication(pf, fc, t, var_market=var, rules=rules) for t in intervals]
    env = [e for e, _ in published]
    pros = world.scenario.prosumers
    battery_kwh = np.array([p.battery_kwh for p in pros], dtype=float)
    efficiency = np.array([p.battery_efficiency for p in pros], dtype=float)
    below = curvature = var_energy = None
    window = slice(intervals.start, intervals.stop)
    if var and config.var_pricing == VarPricing.EX_POST:
        below, curvature = _loss_curvature(pf, fc, intervals)
        var_energy = np.asarray(rules.var_energy_price(fc.retail_eur_per_kwh[window]))
    return DayInputs(
        duration_h=world.duration_h,
        load_kw=fc.load_kw[window],
        pv_kw=fc.pv_kw[window],
        export_kw=np.array([e.export_kw for e in env]),
        import_kw=np.array([e.import_kw for e in env]),
        q_min_kvar=np.array([e.q_min_kvar for e in env]),
        q_max_kvar=np.array([e.q_max_kvar for e in env]),
        var_price_eur_per_kvarh=np.array([price[fc.prosumer_bus] for _, price in published]),
        retail_eur_per_kwh=fc.retail_eur_per_kwh[window],
        feed_in_eur_per_kwh=fc.feed_in_eur_per_kwh[window],
        inverter_kva=fc.inverter_kva,
        battery_kwh=battery_kwh,
        battery_kw=fc.battery_kw,
        efficiency=efficiency,
        soc_start_kwh=soc_start_kwh,
        storage_price_eur_per_kwh=storage_price_eur_per_kwh(efficiency, fc.retail_eur_per_kwh),
        network_charge_eur_per_kwh=config.network_charge_eur_per_kwh,
        p2p_market=market_has_p2p(config.market),
        var_market=var,
        below=below,
        curvature_kw_per_kvar2=curvature,
        var_energy_eur_per_kwh=var_energy,
    )


def _loss_curvature(
    pf: RadialPowerFlow, fc: DsoForecast, intervals: range
) -> tuple[np.ndarray, np.ndarray]:
    """Which prosumers lie below each line, and each line's loss curvature
    ``h_l = r_l / |V_child|**2`` (kW per kvar**2) at the forecast point of every interval."""
    feeder = pf.feeder
    position = np.full(feeder.n_bus, -1)
    position[pf.non_slack] = np.arange(len(pf.non_slack))
    buses = np.asarray(fc.prosumer_bus)
    on_path = np.zeros((len(buses), feeder.n_line))
    inside = position[buses] >= 0
    on_path[inside] = pf.path[position[buses[inside]]]
    p_bus, q_bus = [], []
    for t in intervals:
        p_other, q_other, net_p, _ = base_injection(fc, t)
        np.add.at(p_other, buses, net_p)
        p_bus.append(p_other)
        q_bus.append(q_other)
    vm = pf.solve(np.array(p_bus), np.array(q_bus)).vm_pu  # (T, n_bus)
    curvature = pf.r_line_pu / (KW_PER_PU * vm[:, feeder.to_bus] ** 2)
    return on_path.T, curvature


def optimise_run(world: RunInputs) -> RunDispatch:
    """One LP per day of the run, each starting from the state of charge the last one left.

    A day's end values the stored energy at the settlement's storage price, the price the
    run's last interval bills it at; over a run the days' storage terms telescope into the
    run's one term, so each day's LP sees the true marginal value of energy it carries over
    up to that linear price (exact for a one-day run and for the last day)."""
    pf = RadialPowerFlow(world.feeder)
    pros = world.scenario.prosumers
    soc = np.array([p.initial_soc_fraction * p.battery_kwh for p in pros], dtype=float)
    dispatches, publish_s = [], []
    with single_blas_thread():
        for k in range(len(world.days)):
            start = time.perf_counter()
            inputs = day_inputs(world, pf, k, soc)
            publish_s.append(time.perf_counter() - start)
            dispatch = solve_day(inputs)
            dispatches.append(dispatch)
            soc = np.clip(dispatch.soc_kwh[-1], 0.0, inputs.battery_kwh)
    return RunDispatch(world.days, tuple(dispatches), tuple(publish_s))


def replay_policies(world: RunInputs, dispatch: RunDispatch) -> list[ReplayPolicy]:
    """Every prosumer's ``optimum`` policy: its share of the run's optimal ``dispatch``."""
    battery, q = dispatch.column("battery_p_kw"), dispatch.column("q_inverter_kvar")
    return [
        ReplayPolicy(
            battery[:, i], q[:, i], battery_kw=spec.battery_kw, inverter_kva=spec.inverter_kva
        )
        for i, spec in enumerate(world.scenario.prosumers)
    ]


def optimum_policies(world: RunInputs, arg: str | None = None) -> PolicyMaker:
    """The ``optimum`` policy's maker (``agents.policy_registry.PolicyKind.build``): the run
    is solved once, here, and each prosumer replays its share (``arg`` is unused)."""
    policies = replay_policies(world, optimise_run(world))
    return lambda index, _rng: policies[index]


def dispatch_tables(world: RunInputs, dispatch: RunDispatch) -> dict[str, pd.DataFrame]:
    """The ``optimum`` and ``optimum_days`` tables (:data:`analysis.tables.OPTIMUM_TABLES`)."""
    ids = world.prosumer_ids
    n_t = len(dispatch.column("p2p_kwh"))
    per_interval = {
        "interval": np.repeat(np.arange(n_t), len(ids)),
        "prosumer": np.tile(np.asarray(ids, dtype=object), n_t),
    }
    for name in OPTIMUM_TABLES["optimum"].column_names[2:]:
        per_interval[name] = dispatch.column(name).reshape(-1)
    days = [
        (k, day, d.cost_eur, float(d.p2p_kwh.sum()), publish, d.solve_s, d.n_variables,
         d.n_constraints)
        for k, (day, d, publish) in enumerate(
            zip(dispatch.days, dispatch.day_dispatch, dispatch.publish_s, strict=True)
        )
    ]  # fmt: skip
    return {
        "optimum": pd.DataFrame(per_interval, columns=OPTIMUM_TABLES["optimum"].column_names),
        "optimum_days": pd.DataFrame(days, columns=OPTIMUM_TABLES["optimum_days"].column_names),
    }
