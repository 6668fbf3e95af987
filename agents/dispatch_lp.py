"""The per-prosumer building blocks of a dispatch linear program (HiGHS via scipy).

One owner of each prosumer's variables, bounds, costs and constraints over a horizon of
intervals: PV used, battery charge and discharge, state of charge, export and import inside the
envelopes (load is never shed: an unavoidable import above the envelope is penalised), the
inverter's active power and its capability polygon, the tariffs, the published Var price and the
value of the energy left in store (``docs/optimum.md`` states the formulation). Both the
perfect-foresight optimum (``abm.optimum``, every prosumer of a feeder in one LP, plus P2P
matching and the ex-post Var curvature) and the forecast MPC (``agents.mpc``, one prosumer over
the rest of its day) build their LPs from them. numpy and scipy only: a prosumer process runs it.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.optimize
import scipy.sparse

from agents.errors import AgentError

#: Sides of the inscribed polygon that stands for the capability circle p**2 + q**2 <= s**2
#: (a vertex on each axis, so the full rating stays available at unity power factor).
CAPABILITY_SIDES = 16
#: Penalty on an import above the envelope that the battery cannot avoid (load is never
#: shed; the plan reports it as ``import_violation_kw``), EUR/kWh.
IMPORT_VIOLATION_PENALTY_EUR_PER_KWH = 10.0
#: Tie-break against curtailing PV that has no value (EUR/kWh).
CURTAILMENT_TIE_BREAK_EUR_PER_KWH = 1e-6


class DispatchInputError(AgentError):
    """A dispatch LP's inputs are invalid; the message names the field and the value."""


class DispatchSolveError(AgentError):
    """HiGHS found no optimal solution of a dispatch LP."""


@dataclass(frozen=True)
class DayInputs:
    """A horizon of the LP (the optimum: one day of every prosumer; the MPC: the rest of one
    prosumer's day): ``(T, N)`` per interval and prosumer, ``(T,)``, ``(N,)`` as noted."""

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
    #: False: the caller vouches for inputs of this form, checked already (the MPC checks a
    #: day's first horizon in full and the observation's numbers at every interval).
    validate: bool = field(default=True, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.validate:
            self._check()

    def _check(self) -> None:
        """:class:`DispatchInputError` naming the first field that has the wrong shape, a
        value that is not finite or a value outside its range."""
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
                raise DispatchInputError(f"{name} has shape {value.shape}, expected {shape}")
            if not np.isfinite(value).all():
                raise DispatchInputError(f"{name} holds a value that is not finite")
        nonneg = ("load_kw", "pv_kw", "export_kw", "import_kw", "q_max_kvar", "inverter_kva")
        for name in (*nonneg, "battery_kwh", "battery_kw", "soc_start_kwh"):
            _refuse_where(name, getattr(self, name), np.asarray(getattr(self, name)) < 0, ">= 0")
        _refuse_where("q_min_kvar", self.q_min_kvar, np.asarray(self.q_min_kvar) > 0, "<= 0")
        eff = np.asarray(self.efficiency, dtype=float)
        _refuse_where("efficiency", eff, (eff <= 0) | (eff > 1), "in (0, 1]")
        over = np.asarray(self.soc_start_kwh) > np.asarray(self.battery_kwh) + 1e-9
        _refuse_where("soc_start_kwh", self.soc_start_kwh, over, "<= battery_kwh")
        if not (math.isfinite(self.duration_h) and self.duration_h > 0):
            raise DispatchInputError(f"duration_h = {self.duration_h!r} must be > 0")
        charge = self.network_charge_eur_per_kwh
        if not (math.isfinite(charge) and charge >= 0):
            raise DispatchInputError(f"network_charge_eur_per_kwh = {charge!r} must be >= 0")

    @property
    def shape(self) -> tuple[int, int]:
        """``(T, N)``: intervals and prosumers."""
        t, n = np.shape(self.load_kw)
        return int(t), int(n)


def _refuse_where(name: str, values: object, bad: np.ndarray, rule: str) -> None:
    """:class:`DispatchInputError` naming the first element of ``values`` where ``bad`` holds."""
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        value = float(np.asarray(values, dtype=float)[where])
        raise DispatchInputError(f"{name}{list(where)} = {value!r}: must be {rule}")


class Columns:
    """Column indices of the LP's variables, laid out block after block."""

    def __init__(self) -> None:
        self.n = 0

    def block(self, *shape: int) -> np.ndarray:
        """The indices of ``prod(shape)`` new variables, in that shape."""
        size = int(np.prod(shape))
        cols = np.arange(self.n, self.n + size).reshape(shape)
        self.n += size
        return cols


class Rows:
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
    ) -> np.ndarray:
        """One row per element of the broadcast terms (column array, coefficient); the new
        rows' indices, in the terms' broadcast shape."""
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
        return row.reshape(shape)

    def matrix(self, n_cols: int) -> scipy.sparse.csr_array:
        """The rows' coefficients as a sparse matrix over ``n_cols`` variables."""
        return scipy.sparse.csr_array(
            (np.concatenate(self.vals), (np.concatenate(self.rows), np.concatenate(self.cols))),
            shape=(self.n, n_cols),
        )

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """The rows' lower and upper bounds."""
        return np.concatenate(self.lo), np.concatenate(self.hi)

    def constraint(self, n_cols: int) -> scipy.optimize.LinearConstraint:
        """Every row so far as one sparse constraint over ``n_cols`` variables."""
        return scipy.optimize.LinearConstraint(self.matrix(n_cols), *self.bounds())


@dataclass(frozen=True)
class ProsumerColumns:
    """Column indices of the prosumers' variables, ``(T, N)`` each (kW; ``soc`` kWh after the
    interval; ``q`` the inverter's kvar)."""

    pv: np.ndarray
    charge: np.ndarray
    discharge: np.ndarray
    soc: np.ndarray
    export: np.ndarray
    imp: np.ndarray
    violation: np.ndarray
    q: np.ndarray

    @classmethod
    def allocate(cls, cols: Columns, t_n: int, n: int) -> ProsumerColumns:
        """The eight blocks, laid out one after the other from ``cols``' next column."""
        return cls(*(cols.block(t_n, n) for _ in range(8)))


def reactive_range(day: DayInputs) -> tuple[np.ndarray, np.ndarray]:
    """The inverters' reactive range ``(q_lo, q_hi)``, ``(T, N)``: the envelope's inside the
    rating in a Var market (always containing 0), else 0."""
    t_n, n = day.shape
    if not day.var_market:
        return np.zeros((t_n, n)), np.zeros((t_n, n))
    s_kva = np.asarray(day.inverter_kva, float)
    q_lo = np.minimum(0.0, np.maximum(day.q_min_kvar, -s_kva))
    q_hi = np.maximum(0.0, np.minimum(day.q_max_kvar, s_kva))
    return q_lo, q_hi


def prosumer_bounds(
    v: ProsumerColumns, day: DayInputs, lower: np.ndarray, upper: np.ndarray
) -> None:
    """Set the prosumers' variable bounds in ``lower`` and ``upper`` (every other 0 / inf)."""
    has_battery = (np.asarray(day.battery_kwh) > 0) & (np.asarray(day.battery_kw) > 0)
    power = np.where(has_battery, day.battery_kw, 0.0)
    upper[v.pv] = day.pv_kw
    upper[v.charge] = power
    upper[v.discharge] = power
    upper[v.soc] = np.where(has_battery, day.battery_kwh, 0.0)
    upper[v.export] = day.export_kw
    lower[v.q], upper[v.q] = reactive_range(day)


def prosumer_costs(v: ProsumerColumns, day: DayInputs, cost: np.ndarray) -> float:
    """Set the prosumers' cost coefficients (EUR) in ``cost``; return the objective's constant
    (the value of the energy stored at the start): retail on import, feed-in on export, the
    import penalty, the curtailment tie-break, the Var price and the stored energy's value."""
    dt = day.duration_h
    cost[v.export] = -np.asarray(day.feed_in_eur_per_kwh, float)[:, None] * dt
    cost[v.imp] = np.asarray(day.retail_eur_per_kwh, float)[:, None] * dt
    cost[v.violation] = IMPORT_VIOLATION_PENALTY_EUR_PER_KWH * dt
    cost[v.pv] = -CURTAILMENT_TIE_BREAK_EUR_PER_KWH * dt
    cost[v.q] = -np.asarray(day.var_price_eur_per_kvarh, float) * dt
    cost[v.soc[-1]] = -np.asarray(day.storage_price_eur_per_kwh, float)
    return float(np.dot(day.storage_price_eur_per_kwh, day.soc_start_kwh))


def inverter_p(v: ProsumerColumns) -> list[tuple[np.ndarray, float]]:
    """The inverter's active power ``pv + discharge - charge`` as row terms."""
    return [(v.pv, 1.0), (v.discharge, 1.0), (v.charge, -1.0)]


@dataclass(frozen=True)
class ProsumerRows:
    """Row indices of the prosumers' rows whose bounds follow the inputs (the others' bounds
    are 0): power balance and import envelope ``(T, N)``, the first state of charge ``(N,)``,
    the inverter's rating ``(T, N)`` and its polygon ``(sides, T, N)`` (None without)."""

    balance: np.ndarray
    imp: np.ndarray
    soc_start: np.ndarray
    rating: np.ndarray
    polygon: np.ndarray | None


def has_polygon(day: DayInputs) -> bool:
    """Whether the inverter's capability polygon is in: a Var market with a reactive range."""
    q_lo, q_hi = reactive_range(day)
    return day.var_market and bool((q_hi - q_lo > 0).any())


def _input_row_bounds(day: DayInputs) -> dict[str, tuple[np.ndarray | float, np.ndarray | float]]:
    """The bounds ``(lo, hi)`` of each block of :class:`ProsumerRows`, by field name."""
    s_kva = np.asarray(day.inverter_kva, float)
    return {
        "balance": (day.load_kw, day.load_kw),
        "imp": (-np.inf, day.import_kw),
        "soc_start": (day.soc_start_kwh, day.soc_start_kwh),
        "rating": (-s_kva, s_kva),
        "polygon": (-np.inf, s_kva * math.cos(math.pi / CAPABILITY_SIDES)),
    }


def prosumer_rows(v: ProsumerColumns, day: DayInputs, rows: Rows) -> ProsumerRows:
    """Add the prosumers' constraints: power balance, the import envelope, the state of
    charge, the inverter's rating and (in a Var market with a reactive range) its polygon;
    the indices of the rows whose bounds follow the inputs (:func:`prosumer_row_bounds`)."""
    t_n, n = day.shape
    dt = day.duration_h
    eta = np.asarray(day.efficiency, float)
    bounds = _input_row_bounds(day)
    # power balance: pv_used + discharge - charge - load = export - import
    balance = rows.add(
        [(v.pv, 1.0), (v.discharge, 1.0), (v.charge, -1.0), (v.export, -1.0), (v.imp, 1.0)],
        *bounds["balance"],
    )
    imp = rows.add([(v.imp, 1.0), (v.violation, -1.0)], *bounds["imp"])
    # state of charge: soc_t = soc_{t-1} + eta dt charge - dt / eta discharge
    soc, charge, discharge = v.soc, v.charge, v.discharge
    previous = np.vstack([np.full((1, n), -1), soc[:-1]])
    soc_start = rows.add(
        [(soc[0], 1.0), (charge[0], -eta * dt), (discharge[0], dt / eta)], *bounds["soc_start"]
    )
    if t_n > 1:
        rows.add([(soc[1:], 1.0), (previous[1:], -1.0), (charge[1:], -eta * dt),
                  (discharge[1:], dt / eta)], 0.0, 0.0)  # fmt: skip
    # the inverter carries PV and battery: |p_inv| <= s, and (p_inv, q) in the polygon
    p_inv = inverter_p(v)
    rating = rows.add(p_inv, *bounds["rating"])
    polygon = None
    if has_polygon(day):  # one block of rows per side, side-major
        angles = [(2 * j + 1) * math.pi / CAPABILITY_SIDES for j in range(CAPABILITY_SIDES)]
        cos = np.array([math.cos(a) for a in angles])[:, None, None]
        sin = np.array([math.sin(a) for a in angles])[:, None, None]
        terms = [(c, val * cos) for c, val in p_inv] + [(v.q, sin)]
        polygon = rows.add(terms, *bounds["polygon"])
    return ProsumerRows(balance, imp, soc_start, rating, polygon)


def prosumer_row_bounds(
    blocks: ProsumerRows, day: DayInputs, row_lo: np.ndarray, row_hi: np.ndarray
) -> None:
    """Set the bounds of the rows that follow the inputs (``blocks``, from
    :func:`prosumer_rows` for a day of the same structure) to ``day``'s."""
    for name, (lo, hi) in _input_row_bounds(day).items():
        index = getattr(blocks, name)
        if index is not None:
            row_lo[index], row_hi[index] = lo, hi


def solve(
    cost: np.ndarray, rows: Rows, lower: np.ndarray, upper: np.ndarray
) -> tuple[np.ndarray, float]:
    """Solve the LP with HiGHS; the solution and its objective (:class:`DispatchSolveError`
    with HiGHS's message when it has no optimal solution)."""
    return _milp(cost, rows.constraint(len(cost)), lower, upper)


def _milp(
    cost: np.ndarray,
    constraint: scipy.optimize.LinearConstraint,
    lower: np.ndarray,
    upper: np.ndarray,
) -> tuple[np.ndarray, float]:
    """:func:`solve` with the rows as one constraint."""
    result = scipy.optimize.milp(
        cost,
        constraints=constraint,
        bounds=scipy.optimize.Bounds(lower, upper),
        options={"presolve": True},
    )
    if result.status != 0 or result.x is None:
        raise DispatchSolveError(f"the linear program failed: {result.message}")
    return result.x, float(result.fun)


def _highs_core() -> Any:
    """scipy's bundled HiGHS bindings (``scipy.optimize._highspy._core``, scipy >= 1.15; the
    module :func:`scipy.optimize.milp` itself calls), or None where this scipy lacks them."""
    try:
        return importlib.import_module("scipy.optimize._highspy._core")
    except ImportError:
        return None


class WarmLP:
    """One LP structure solved again and again with new costs and bounds: a HiGHS instance
    kept between solves (only the changed row bounds are passed; each solve starts from the
    last basis). Where scipy has no HiGHS bindings, every solve is a fresh :func:`solve`."""

    def __init__(self, matrix: scipy.sparse.csr_array) -> None:
        self.matrix = matrix
        self.core = _highs_core()
        self.highs: Any = None
        self.row_lo = self.row_hi = np.zeros(0)
        self.cols = np.arange(matrix.shape[1], dtype=np.int32)

    def _start(self, cost: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> None:
        """Pass the whole model (the rows' bounds: the last passed) to a new HiGHS instance."""
        core, csc = self.core, self.matrix.tocsc()
        lp = core.HighsLp()
        lp.num_col_, lp.num_row_ = csc.shape[1], csc.shape[0]
        lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = csc.shape[1], csc.shape[0]
        lp.a_matrix_.format_ = core.MatrixFormat.kColwise
        lp.a_matrix_.start_, lp.a_matrix_.index_ = csc.indptr, csc.indices
        lp.a_matrix_.value_ = csc.data
        lp.col_cost_, lp.col_lower_, lp.col_upper_ = cost, lower, upper
        lp.row_lower_, lp.row_upper_ = self.row_lo, self.row_hi
        self.highs = core._Highs()
        self.highs.setOptionValue("output_flag", False)
        self.highs.passModel(lp)

    def solve(
        self,
        cost: np.ndarray,
        lower: np.ndarray,
        upper: np.ndarray,
        row_lo: np.ndarray,
        row_hi: np.ndarray,
    ) -> tuple[np.ndarray, float]:
        """As :func:`solve`, with the rows' bounds ``row_lo``, ``row_hi``. A warm solve that
        does not end optimal is tried once more from scratch before it counts as failed."""
        if self.core is None:
            constraint = scipy.optimize.LinearConstraint(self.matrix, row_lo, row_hi)
            return _milp(cost, constraint, lower, upper)
        warm = self.highs is not None
        if warm:
            self.highs.changeColsCost(len(cost), self.cols, cost)
            self.highs.changeColsBounds(len(cost), self.cols, lower, upper)
            for r in np.flatnonzero((row_lo != self.row_lo) | (row_hi != self.row_hi)):
                self.highs.changeRowBounds(int(r), row_lo[r], row_hi[r])
        self.row_lo, self.row_hi = row_lo.copy(), row_hi.copy()
        if not warm:
            self._start(cost, lower, upper)
        self.highs.run()
        optimal = self.core.HighsModelStatus.kOptimal
        if warm and self.highs.getModelStatus() != optimal:
            self._start(cost, lower, upper)
            self.highs.run()
        status = self.highs.getModelStatus()
        if status != optimal:
            message = self.highs.modelStatusToString(status)
            self.highs = None  # start afresh next time
            raise DispatchSolveError(f"the linear program failed: {message}")
        x = np.asarray(self.highs.getSolution().col_value, dtype=float)
        return x, float(self.highs.getObjectiveValue())


class ProsumerLP:
    """The prosumers' LP over a horizon, of one structure (:meth:`key`), solved again and
    again for other inputs: its columns, its constraint matrix and the bounds of the rows that
    do not follow the inputs are built once; each solve sets the columns' bounds and costs
    (:func:`prosumer_bounds`, :func:`prosumer_costs`) and the other rows' bounds
    (:func:`prosumer_row_bounds`) and starts HiGHS from the last basis (:class:`WarmLP`)."""

    def __init__(self, day: DayInputs) -> None:
        cols, rows = Columns(), Rows()
        self.columns = ProsumerColumns.allocate(cols, *day.shape)
        self.blocks = prosumer_rows(self.columns, day, rows)
        self.row_lo, self.row_hi = rows.bounds()
        self.lp = WarmLP(rows.matrix(cols.n))

    @staticmethod
    def key(day: DayInputs) -> tuple[object, ...]:
        """What fixes ``day``'s constraint matrix: the horizon, the prosumers, whether the
        polygon is in, the interval's duration and the efficiencies."""
        return (*day.shape, has_polygon(day), day.duration_h, *np.asarray(day.efficiency).tolist())

    def solve(self, day: DayInputs, extra_cost: np.ndarray | float = 0.0) -> np.ndarray:
        """The solution of ``day``'s LP (``extra_cost``: added to the costs per column) by
        :meth:`WarmLP.solve`."""
        n_cols = len(self.lp.cols)
        lower, upper, cost = np.zeros(n_cols), np.full(n_cols, np.inf), np.zeros(n_cols)
        prosumer_bounds(self.columns, day, lower, upper)
        prosumer_costs(self.columns, day, cost)
        prosumer_row_bounds(self.blocks, day, self.row_lo, self.row_hi)
        x, _ = self.lp.solve(cost + extra_cost, lower, upper, self.row_lo, self.row_hi)
        return x
