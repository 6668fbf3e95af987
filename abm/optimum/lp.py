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

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from abm.config import market_has_p2p, market_has_var
from abm.errors import AbmError
from agents.dispatch_lp import (
    CURTAILMENT_TIE_BREAK_EUR_PER_KWH,
    Columns,
    DayInputs,
    DispatchSolveError,
    ProsumerColumns,
    Rows,
    prosumer_bounds,
    prosumer_costs,
    prosumer_rows,
    reactive_range,
    solve,
)
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

#: Tangent points of each line's squared reactive flow (over its reachable range) in the
#: first solve; each further round adds a tangent at the solution's flow where the cuts
#: still underestimate its square, until the Var cost they miss is below CUT_GAP_EUR.
TANGENT_POINTS = 17
MAX_CUT_ROUNDS = 6
CUT_GAP_EUR = 0.01


class OptimumError(AbmError):
    """The optimum's inputs are invalid, or its linear program has no solution."""


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


def solve_day(day: DayInputs) -> DayDispatch:
    """The dispatch of minimum total bill for one day (formulation: ``docs/optimum.md``)."""
    start = time.perf_counter()
    t_n, n = day.shape
    dt = day.duration_h
    retail = np.asarray(day.retail_eur_per_kwh, float)
    feed_in = np.asarray(day.feed_in_eur_per_kwh, float)
    q_lo, q_hi = reactive_range(day)

    cols = Columns()
    v = ProsumerColumns.allocate(cols, t_n, n)
    p2p_gain = retail - feed_in - day.network_charge_eur_per_kwh  # EUR per matched kWh
    trades = day.p2p_market and bool((p2p_gain > 0).any())
    matched = cols.block(t_n) if trades else np.zeros(0, dtype=int)
    quadratic = day.var_market and day.below is not None and day.curvature_kw_per_kvar2 is not None
    lines = np.zeros(0, dtype=int)
    if quadratic:
        assert day.below is not None  # for mypy: checked just above
        span = (q_hi - q_lo) @ np.asarray(day.below, float).T  # (T, L) reachable range
        lines = np.flatnonzero((span > 0).any(axis=0))
    flow = cols.block(t_n, len(lines))  # S: the inverters' q below each line
    flow_sq = cols.block(t_n, len(lines))  # its square, from below by tangent cuts

    lower = np.zeros(cols.n)
    upper = np.full(cols.n, np.inf)
    prosumer_bounds(v, day, lower, upper)
    if trades:
        upper[matched] = np.where(p2p_gain > 0, np.inf, 0.0)

    cost = np.zeros(cols.n)
    constant = prosumer_costs(v, day, cost)
    if trades:
        cost[matched] = -np.maximum(p2p_gain, 0.0) * dt

    rows = Rows()
    prosumer_rows(v, day, rows)
    if trades:  # matched P2P energy: at most what sellers export and buyers import
        for side in (v.export, v.imp):
            rows.add([(matched, 1.0)] + [(side[:, k], -1.0) for k in range(n)], -np.inf, 0.0)
    if quadratic:
        assert day.below is not None and day.curvature_kw_per_kvar2 is not None  # for mypy
        assert day.var_energy_eur_per_kwh is not None
        below = np.asarray(day.below, float)[lines]
        for i in range(len(lines)):
            members = np.flatnonzero(below[i] > 0)
            rows.add([(flow[:, i], 1.0)] + [(v.q[:, k], -1.0) for k in members], 0.0, 0.0)
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
    battery = x[v.discharge] - x[v.charge]
    return DayDispatch(
        battery_p_kw=battery,
        pv_used_kw=x[v.pv],
        p_kw=x[v.pv] + battery - np.asarray(day.load_kw, float),
        q_inverter_kvar=x[v.q],
        soc_kwh=x[v.soc],
        import_violation_kw=x[v.violation],
        p2p_kwh=x[matched] * dt if trades else np.zeros(t_n),
        # the modelled bill: the tie-break is no cost, the squares' missed part is
        cost_eur=fun
        + constant
        + CURTAILMENT_TIE_BREAK_EUR_PER_KWH * dt * float(x[v.pv].sum())
        + float(missed_eur.sum()),
        solve_s=time.perf_counter() - start,
        n_variables=cols.n,
        n_constraints=rows.n,
    )


def _tangent_cuts(rows: Rows, flow: np.ndarray, flow_sq: np.ndarray, points: np.ndarray) -> None:
    """``flow_sq >= 2 a flow - a**2`` at the tangent points ``points`` (``flow``'s shape plus
    one axis; NaN: no cut)."""
    t_idx, l_idx, j_idx = np.nonzero(np.isfinite(points))
    a = points[t_idx, l_idx, j_idx]
    rows.add([(flow[t_idx, l_idx], 2.0 * a), (flow_sq[t_idx, l_idx], -1.0)], -np.inf, a * a)


def _solve(
    cost: np.ndarray, rows: Rows, lower: np.ndarray, upper: np.ndarray
) -> tuple[np.ndarray, float]:
    """Solve the LP with HiGHS; the solution and its objective."""
    try:
        return solve(cost, rows, lower, upper)
    except DispatchSolveError as exc:
        raise OptimumError(f"the optimum's {exc}") from None


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
