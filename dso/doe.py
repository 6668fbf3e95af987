"""Dynamic operating envelopes (DOEs): per-prosumer export and import limits for an interval.

Algorithm (``docs/grid.md``): max-min fair water filling, one side at a time. All unfrozen
prosumers rise together, prosumer ``k`` to ``min(w_k t, max_k)`` at the water level ``t``.
The largest level that keeps every constraint (``vm_min + margin <= vm <= vm_max - margin``
at every non-slack bus, ``loading <= max_loading - margin`` on every line) is found by
batched power flows over many candidate levels at once (a uniform grid, then a geometric
ladder around the linearly interpolated crossing). There, each unfrozen prosumer is probed
alone with a 1 % raise; those whose raise breaks a limit are frozen, the others keep
rising. Branches leaving the substation are electrically independent (the slack voltage is
fixed), so every branch has its own level and all branches are searched in the same
batched power flows.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, replace
from enum import StrEnum

import numpy as np

from dso.blas import single_blas_thread
from dso.errors import InvalidInput
from dso.powerflow import KW_PER_PU, VM_MAX_PU, VM_MIN_PU, RadialPowerFlow
from dso.sensitivity import voltage_sensitivities


class Fairness(StrEnum):
    """How the envelopes share the grid's headroom: equally, or in proportion to PV size."""

    EQUAL = "equal"
    PROPORTIONAL = "proportional"


class EnvelopeRule(StrEnum):
    """What the DSO publishes as each prosumer's limits (``docs/grid.md``).

    ``dynamic``: the operating envelopes of :func:`compute_envelopes`, from the power flow;
    ``static``: a fixed export cap per prosumer (its connection agreement), imports and the
    inverter's reactive range unlimited by the network (:func:`fixed_envelopes`);
    ``none``: only the physical maxima (no network limit at all, for comparison).
    """

    DYNAMIC = "dynamic"
    STATIC = "static"
    NONE = "none"


#: Safety margin inside the limits. Voltages: an independent AC power flow at the envelope
#: corner also stays inside (our power flow agrees with pandapower to ~1e-12 pu), and the
#: corners bound every voltage of the box (sampled: never passed by more than 4e-14 pu).
#: Lines: a line's apparent power over the box is largest at a corner only up to loss and
#: line-charging terms (sampled: up to 0.04 % of the rating on swiss161, 0.012 % on CIGRE
#: MV feeder 1); the margin covers them 2.5 times over (``docs/grid.md``).
VOLTAGE_MARGIN_PU = 1e-10
LOADING_MARGIN_PERCENT = 0.1
#: A constraint counts as kept down to this slack below its tightened limit (pu, or loading
#: fraction): the noise of the power flow, so that a limit that has already bound does not
#: stop prosumers that do not affect it.
FEASIBILITY_TOL = 1e-12
#: A level search stops once the constraint that it crosses is within this slack, or once
#: the bracket is this narrow relative to the level.
MARGIN_TOL = 1e-12
LEVEL_RTOL = 1e-14
#: A constraint tight at the lower end of the bracket whose fall there is not shown by a
#: feasible point below stops the search once the bracket is this narrow relative to its
#: initial width (the smallest step of the ladder on the first bracket).
CLOSED_RTOL = 1e-9
#: Power flow tolerance inside the envelope search (pu voltage step).
DOE_TOL_PU = 1e-13
#: Candidate levels per batched power flow of the search.
N_CANDIDATES = 16
#: Offsets, as fractions of the bracket, around the interpolated crossing.
LADDER = np.array([-(10.0**-e) for e in range(1, 9)] + [10.0**-e for e in range(8, 0, -1)])
#: The uniform grid's candidates as fractions of the bracket, ``(N_CANDIDATES, 1)``.
_GRID = (np.arange(1, N_CANDIDATES + 1) / N_CANDIDATES)[:, None]
#: Water-filling passes at most: a pass after the first lets prosumers rise again whose
#: freezing limit a later rise relieved (limits are not monotone in every injection).
MAX_PASSES = 4
#: The freeze probe: raise one prosumer by this fraction (at least PROBE_MIN_KW).
PROBE_RAISE = 0.01
PROBE_MIN_KW = 1e-3
#: Searches at most with the non-monotone voltage margin (:func:`voltage_rise_above_corner`):
#: the first without it, each later one with the rise found in the box of the one before.
MAX_MARGIN_PASSES = 4
#: A search's margin is the rise found in the box before times this: the tighter box that
#: it gives moves its corner, and so the rise, a little (+0.35 % on CIGRE MV), and the
#: excess keeps the next box inside the bound without more passes.
MARGIN_GROWTH = 1.01
#: Direction of each side's rise as a complex power: active export/import, reactive
#: injection (q_max) and absorption (q_min).
EXPORT, IMPORT, Q_MAX, Q_MIN = 1.0 + 0j, -1.0 + 0j, 1j, -1j


@dataclass(frozen=True)
class Envelopes:
    """Export and import limits (kW, >= 0) and the inverter's reactive range
    (``q_min_kvar <= 0 <= q_max_kvar``) per prosumer, and why each stopped where it did.

    ``*_feasible`` is False when the network already violates a limit with every prosumer
    at 0 on that side; the prosumers of the affected branches then get 0 there and their
    ``*_binding`` entry starts with ``infeasible at zero`` (as do the reactive bindings of a
    branch that violates a limit at an active corner).
    """

    export_kw: np.ndarray  # (n_prosumer,)
    import_kw: np.ndarray  # (n_prosumer,)
    q_min_kvar: np.ndarray  # (n_prosumer,) <= 0: most absorption of the inverter
    q_max_kvar: np.ndarray  # (n_prosumer,) >= 0: most injection of the inverter
    export_feasible: bool
    import_feasible: bool
    export_binding: tuple[str, ...]  # per prosumer: the limit that stopped it
    import_binding: tuple[str, ...]
    q_max_binding: tuple[str, ...]
    q_min_binding: tuple[str, ...]
    fairness: str
    n_power_flows: int  # scenarios solved (both sides)


@dataclass(frozen=True)
class _Constraints:
    """Every network constraint of a feeder, ordered by branch (``reduceat`` segments)."""

    order: np.ndarray  # (C,) columns of [vm_max per non-slack bus, vm_min ..., loading per line]
    group: np.ndarray  # (C,) branch of each ordered constraint
    starts: np.ndarray  # (G,) first ordered constraint of each branch
    names: tuple[str, ...]  # (C,) ordered


_CONSTRAINTS: weakref.WeakKeyDictionary[RadialPowerFlow, _Constraints] = weakref.WeakKeyDictionary()


def _constraints(pf: RadialPowerFlow) -> _Constraints:
    cached = _CONSTRAINTS.get(pf)
    if cached is None:
        f = pf.feeder
        ns = pf.non_slack
        branch = f.branch_of_bus
        group = np.concatenate([branch[ns], branch[ns], branch[f.to_bus]])
        names = (
            [f"vm_max at bus {f.bus_names[b]}" for b in ns]
            + [f"vm_min at bus {f.bus_names[b]}" for b in ns]
            + [f"loading of line {f.line_names[line]}" for line in range(f.n_line)]
        )
        order = np.argsort(group, kind="stable")
        starts = np.searchsorted(group[order], np.arange(group.max() + 1))
        cached = _Constraints(order, group[order], starts, tuple(names[i] for i in order))
        _CONSTRAINTS[pf] = cached
    return cached


#: A stage's limits: ``vm_min_pu``, ``vm_max_pu``, ``max_loading_percent`` and the extra
#: ``vm_max`` margin per non-slack bus (pu; empty: none), hashable for the layout cache.
Limits = tuple[float, float, float, tuple[float, ...]]


@dataclass(frozen=True)
class _Layout:
    """The index and limit arrays of a stage that depend only on the feeder, the prosumers'
    branches, the number of sides and corners and the limits (read-only, built once)."""

    group: np.ndarray  # (S * n_prosumer,) virtual branch of each virtual prosumer (-1: slack)
    group_k: np.ndarray  # the same, any branch for the slack bus
    margin: np.ndarray  # (S * C,) margin of each ordered constraint
    upper: np.ndarray  # (C,) one side's tightened limits, ordered
    starts: np.ndarray  # (S * G,) first ordered constraint of each virtual branch
    cons_group: np.ndarray  # (S * C,) virtual branch of each ordered constraint
    start_group: np.ndarray  # (S, n_bus) per side and bus, the virtual branch of its start
    pick_index: tuple[np.ndarray, np.ndarray, np.ndarray]  # side, corner, bus index grids


_LAYOUTS: weakref.WeakKeyDictionary[RadialPowerFlow, dict[tuple, _Layout]] = (
    weakref.WeakKeyDictionary()
)
#: Layouts kept per power flow object (different prosumer sets or limits).
MAX_LAYOUTS = 16


def _layout(
    pf: RadialPowerFlow,
    cons: _Constraints,
    group: np.ndarray,
    n_sides: int,
    n_corners: int,
    limits: Limits,
) -> _Layout:
    """The cached :class:`_Layout` of a stage (see :class:`_Side` for the virtual layout)."""
    layouts = _LAYOUTS.setdefault(pf, {})
    key = (group.tobytes(), n_sides, n_corners, limits)
    cached = layouts.get(key)
    if cached is not None:
        return cached
    n_p, n_branches = len(group), len(cons.starts)
    side = np.repeat(np.arange(n_sides), n_p)
    branch = np.tile(group, n_sides)
    virtual = np.where(branch >= 0, side * n_branches + branch, -1)
    vm_min, vm_max, max_loading, vm_max_margin = limits
    n_ns, n_line, n_bus = len(pf.non_slack), pf.feeder.n_line, pf.feeder.n_bus
    n_cons = len(cons.order)
    # slack = upper - [vm, -vm, loading / 100] per constraint, limits tightened by margin
    margin = np.repeat([VOLTAGE_MARGIN_PU, LOADING_MARGIN_PERCENT / 100.0], [2 * n_ns, n_line])
    if vm_max_margin:  # the non-monotone voltage margin of each non-slack bus, both limits
        margin[: 2 * n_ns] += np.tile(vm_max_margin, 2)
    limit = np.repeat([vm_max, -vm_min, max_loading / 100.0], [n_ns, n_ns, n_line])
    offsets = np.arange(n_sides)[:, None]
    bus_branch = np.maximum(pf.feeder.branch_of_bus, 0)  # slack bus: any branch
    cached = _Layout(
        group=virtual,
        group_k=np.maximum(virtual, 0),
        margin=np.tile(margin[cons.order], n_sides),
        upper=(limit - margin)[cons.order],
        starts=(offsets * n_cons + cons.starts).ravel(),
        cons_group=(offsets * n_branches + cons.group).ravel(),
        start_group=offsets * n_branches + bus_branch,
        pick_index=(
            np.arange(n_sides)[:, None, None],
            np.arange(n_corners)[None, :, None],
            np.arange(n_bus)[None, None, :],
        ),
    )
    for array in (*vars(cached).values(), *cached.pick_index):
        if isinstance(array, np.ndarray):
            array.flags.writeable = False  # shared by every stage of this layout
    if len(layouts) >= MAX_LAYOUTS:
        layouts.clear()
    layouts[key] = cached
    return cached


class _Side:
    """Water filling of one stage for fixed inputs: ``S`` independent sides (export and
    import, or q_max and q_min) searched in lockstep, so that every step solves the power
    flows of all of them in one batch.

    Side ``s`` of prosumer ``k`` is the virtual prosumer ``s * n_prosumer + k`` on the
    virtual branch ``s * G + g`` (``g`` its feeder branch); constraints are laid out side by
    side the same way, so every per-branch step treats a side's branch as its own branch.
    """

    def __init__(
        self,
        pf: RadialPowerFlow,
        cons: _Constraints,
        incidence: np.ndarray,
        corners: np.ndarray,
        group: np.ndarray,
        weights: np.ndarray,
        caps: np.ndarray,
        directions: np.ndarray,
        limits: Limits,
    ) -> None:
        """``corners``: base injections ``(S, n_corner, n_bus)`` (pu) each side rises from;
        ``weights``, ``caps``: ``(S, n_prosumer)``; ``directions``: ``(S,)`` complex."""
        n_sides, n_p = caps.shape
        n_corners = corners.shape[1]
        self.pf, self.incidence, self.corners = pf, incidence, corners
        self.n_sides, self.n_p = n_sides, n_p
        self.directions = directions / KW_PER_PU
        self.weights, self.caps = weights.ravel(), caps.ravel()
        self.vm_min = limits[0]
        lay = _layout(pf, cons, group, n_sides, n_corners, limits)
        self.group, self.group_k = lay.group, lay.group_k
        self.order = cons.order
        self.margin, self.upper = lay.margin, lay.upper
        self.starts, self.cons_group = lay.starts, lay.cons_group
        self.names = cons.names
        self.n_cons = len(cons.order)
        self.n_branches = len(cons.starts)
        self.n_groups = n_sides * self.n_branches
        n = len(self.caps)
        self.fixed = np.zeros(n)
        self.frozen = np.zeros(n, dtype=bool)
        self.limited = np.zeros(n, dtype=bool)  # frozen by a network limit
        self.set_base(np.zeros(n))  # values the rising prosumers rise from
        self.rises = 0  # searches so far that raised some level
        self.frozen_after = np.zeros(n, dtype=int)  # rises before each freeze
        self.why = [""] * n
        self.n_power_flows = 0
        self.start_group = lay.start_group
        self._pick_index = lay.pick_index
        self.v_start: np.ndarray | None = None  # (S, n_corner, n_bus): next power flows' start

    # -- evaluation ------------------------------------------------------------------------

    def set_base(self, base: np.ndarray) -> None:
        """Let the rising prosumers rise from ``base``; ``room`` is the level of their maximum."""
        self.base = base
        with np.errstate(divide="ignore", invalid="ignore"):
            self.room = np.where(self.weights > 0, (self.caps - base) / self.weights, np.inf)

    def level_of(self, level: np.ndarray) -> np.ndarray:
        """Each prosumer's branch level, ``(..., n_prosumer)``."""
        return level[..., self.group_k]

    def values(self, level: np.ndarray) -> np.ndarray:
        """Prosumer powers ``(..., n_prosumer)`` at branch levels ``(..., G)``."""
        level_k = self.level_of(level)
        rising = np.where(level_k >= self.room, self.caps, self.base + self.weights * level_k)
        return np.where(self.frozen, self.fixed, rising)

    def slack(
        self, values: np.ndarray, sides: np.ndarray | None = None, start: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Constraint slack ``(B, S * n_constraint)``, per side the smallest over its corners
        (tightened limits, ordered; -inf where no convergence), and the bus voltages
        ``(B, S, n_corner, n_bus)``, for virtual prosumer values ``(B, S * n_prosumer)``.

        ``sides``: ``(S,)`` mask of the sides to solve (default all); the others get slack
        +inf and NaN voltages. The power flows start from ``start`` ``(B, S, n_corner,
        n_bus)`` if given, else from ``v_start``.
        """
        n_rows, (n_sides, n_corners, n_bus) = len(values), self.corners.shape
        every = sides is None or bool(sides.all())
        sel = np.arange(n_sides) if sides is None or every else np.flatnonzero(sides)
        per_side = values.reshape(n_rows, n_sides, self.n_p)
        directions, corners = self.directions, self.corners
        if not every:
            per_side, directions, corners = per_side[:, sel], directions[sel], corners[sel]
        rise = (per_side @ self.incidence) * directions[:, None]
        s = (corners[None] + rise[:, :, None]).reshape(-1, n_bus)
        s[:, self.pf.feeder.slack_bus] = 0.0
        if start is not None:
            start = start[:, sel].reshape(-1, n_bus)
        elif self.v_start is not None:
            v_start = self.v_start if every else self.v_start[sel]
            start = np.broadcast_to(v_start, (n_rows, *v_start.shape)).reshape(-1, n_bus)
        result, ok = self.pf.solve_pu(s, DOE_TOL_PU, False, start)
        self.n_power_flows += len(s)
        vm = result.vm_pu[:, self.pf.non_slack]
        load = line_loading_bound(self.pf, result.vm_pu, result.loading_percent, self.vm_min)
        # the worst corner first (a reduction over a short middle axis is slow), then order
        used = np.concatenate([vm, -vm, load], axis=1).reshape(-1, n_corners, self.n_cons)
        worst = used[:, 0].copy()
        for corner in range(1, n_corners):
            np.maximum(worst, used[:, corner], out=worst)
        solved = self.upper - worst[:, self.order]
        solved[~ok.reshape(-1, n_corners).all(axis=1)] = -np.inf
        solved = solved.reshape(n_rows, len(sel), -1)
        v_sel = result.v_pu.reshape(n_rows, len(sel), n_corners, n_bus)
        if len(sel) == n_sides:
            return solved.reshape(n_rows, -1), v_sel
        slack = np.full((n_rows, n_sides, self.n_cons), np.inf)
        slack[:, sel] = solved
        v = np.full((n_rows, n_sides, n_corners, n_bus), np.nan, dtype=complex)
        v[:, sel] = v_sel
        return slack.reshape(n_rows, -1), v

    def sides_of(self, branches: np.ndarray) -> np.ndarray:
        """Whether each side has one of the virtual ``branches`` (mask), ``(S,)``."""
        return np.asarray(branches.reshape(self.n_sides, self.n_branches).any(axis=1))

    def pick(self, v: np.ndarray, row: np.ndarray) -> np.ndarray:
        """Per side and corner, each bus's voltage in the ``row`` of its virtual branch:
        ``(S, n_corner, n_bus)`` from ``v`` ``(B, S, n_corner, n_bus)``."""
        sides, corners, buses = self._pick_index
        return v[row[self.start_group][:, None, :], sides, corners, buses]

    def keep_start(self, v: np.ndarray, row: np.ndarray, branches: np.ndarray) -> None:
        """Start later power flows, in virtual ``branches``, from the voltages of ``row``
        (per virtual branch)."""
        picked = self.pick(v, row)
        if self.v_start is None:
            self.v_start = picked
        else:
            take = branches[self.start_group][:, None, :]
            self.v_start = np.where(take, picked, self.v_start)

    def group_min(self, slack: np.ndarray) -> np.ndarray:
        """Smallest slack per virtual branch, ``(..., S * G)``."""
        return np.minimum.reduceat(slack, self.starts, axis=-1)

    def kept(self, slack: np.ndarray) -> np.ndarray:
        """Whether each branch keeps every limit, ``(..., G)``."""
        return self.group_min(slack) >= -FEASIBILITY_TOL

    def binding(self, slack_row: np.ndarray, g: int) -> str:
        """Name of the tightest constraint of branch ``g`` in one slack row."""
        return self.bindings(slack_row[None], g)[0]

    def bindings(self, slack_rows: np.ndarray, g: int) -> list[str]:
        """Name of the tightest constraint of branch ``g`` in each slack row."""
        lo = self.starts[g]
        hi = self.starts[g + 1] if g + 1 < self.n_groups else slack_rows.shape[1]
        rows = slack_rows[:, lo:hi]
        tightest = lo + np.argmin(rows, axis=1)
        solved = np.isfinite(rows).all(axis=1)
        names = self.names
        return [
            names[i % self.n_cons] if ok else "no power flow solution"
            for i, ok in zip(tightest, solved, strict=True)
        ]

    # -- algorithm -------------------------------------------------------------------------

    def freeze(self, mask: np.ndarray, value: np.ndarray | float, why: str | list[str]) -> None:
        """Freeze the prosumers in ``mask`` at ``value`` with reason ``why`` (one, or one per
        prosumer in ``mask``)."""
        self.fixed[mask] = value[mask] if isinstance(value, np.ndarray) else value
        self.frozen |= mask
        frozen = np.flatnonzero(mask)
        reasons = [why] * len(frozen) if isinstance(why, str) else why
        for k, reason in zip(frozen, reasons, strict=True):
            self.why[k] = reason

    def run(self) -> tuple[np.ndarray, np.ndarray]:
        """Water-fill; returns the limits ``(S, n_prosumer)`` (kW or kvar) and per side
        whether the network is feasible at zero, ``(S,)``."""
        self.freeze(self.group < 0, self.caps, "physical maximum (at the slack bus)")
        self.freeze(~self.frozen & (self.caps <= 0), 0.0, "physical maximum")
        self.freeze(~self.frozen & (self.weights <= 0), 0.0, "zero fairness weight")
        level = np.zeros(self.n_groups)
        self.strict = np.zeros(self.n_groups)  # limits kept at zero (margins off), set below
        # the zero point is evaluated with the first search's candidates
        slack_lo: np.ndarray | None = None
        for _ in range(MAX_PASSES):
            level, slack_lo = self.fill(level, slack_lo)
            values = self.values(level)
            self.freeze(~self.frozen, values, "physical maximum")
            released = self.released(values)
            if not released.any():
                break
            # a later rise relieved the limit that froze them: let them rise again from here
            self.frozen &= ~released
            self.limited &= ~released
            self.set_base(np.where(released, values, 0.0))
            level = np.zeros(self.n_groups)
        feasible = (self.strict >= 0).reshape(self.n_sides, self.n_branches).all(axis=1)
        return self.fixed.reshape(self.n_sides, self.n_p), np.asarray(feasible)

    def reasons(self, side: int) -> tuple[str, ...]:
        """Why each prosumer of ``side`` stopped where it did."""
        return tuple(self.why[side * self.n_p : (side + 1) * self.n_p])

    def at_zero(self, slack: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Take the slack ``(S * n_constraint,)`` and voltages ``(1, S, n_corner, n_bus)`` of
        the zero point: freeze at 0 the prosumers of every branch that breaks a limit there.

        Returns whether each branch keeps every limit at zero.
        """
        if np.isfinite(slack).all():
            self.keep_start(v, np.zeros(self.n_groups, dtype=int), np.ones(self.n_groups, bool))
        self.strict = self.group_min(slack + self.margin)
        kept = self.kept(slack)
        for g in np.flatnonzero(~kept):
            why = self.binding(slack, int(g))
            why = f"infeasible at zero: {why}" if self.strict[g] < 0 else f"{why} (binds at zero)"
            self.freeze(~self.frozen & (self.group == g), 0.0, why)
        return kept

    def fill(self, level: np.ndarray, slack_lo: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Raise the unfrozen prosumers stage by stage until each is frozen or at its maximum.

        ``slack_lo``: the slack at ``level``; None at the zero point before its evaluation.
        """
        while True:
            rising = ~self.frozen & (self.level_of(level) < self.room)
            if not rising.any():
                if slack_lo is None:  # nobody rises: the zero point alone
                    slack, v = self.slack(self.values(level)[None])
                    self.at_zero(slack[0], v)
                    slack_lo = slack[0]
                return level, slack_lo
            hi = np.zeros(self.n_groups)
            np.maximum.at(hi, self.group[rising], self.room[rising])
            searching = np.zeros(self.n_groups, dtype=bool)
            searching[self.group[rising]] = True
            previous = level
            level, complete, slack_lo = self.search(level, hi, slack_lo, searching)
            self.rises += bool(np.any(level > previous))
            if (searching & ~complete).any():
                slack_lo = self.probe(level, searching & ~complete)

    def search(
        self, lo: np.ndarray, hi: np.ndarray, slack_lo: np.ndarray | None, active: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Largest feasible level per active branch in ``[lo, hi]``.

        ``slack_lo``: the slack at ``lo``; None at the zero point, which is then evaluated
        with the first candidates (one batched power flow less; :meth:`at_zero`).
        Returns the levels, whether each branch reached ``hi`` (all its rising prosumers at
        their maximum), and the constraint slack at the levels.
        """
        zero_point = slack_lo is None
        lo, hi = lo.copy(), np.where(active, hi, lo)
        width0 = hi - lo
        active = active.copy()
        slack_hi = np.full(len(self.cons_group), np.nan)
        slack_lo = slack_hi.copy() if slack_lo is None else slack_lo.copy()
        v_hi = np.full_like(self.corners, np.nan)  # voltages at hi (NaN: not known)
        # the feasible point below lo last solved, for a quadratic crossing estimate
        prev, slack_prev = lo.copy(), np.full_like(slack_hi, np.nan)
        grp, cols = self.cons_group, np.arange(self.n_groups)
        at_c = np.arange(len(grp))
        while active.any():
            width = hi - lo
            cand = lo + width * _GRID
            cand[-1] = hi
            crossing = np.isfinite(slack_hi) & (slack_hi < -FEASIBILITY_TOL)
            if crossing.any():  # else no branch has a crossing estimate: the uniform grid
                with np.errstate(divide="ignore", invalid="ignore"):
                    u_prev = ((prev - lo) / width)[grp]
                frac = crossing_fraction(slack_prev, slack_lo, slack_hi, u_prev)
                frac = self.group_min(np.where(crossing, frac, np.inf))
                ladder = lo + width * (np.minimum(np.maximum(frac, 0.0), 1.0) + LADDER[:, None])
                ladder = np.minimum(np.maximum(ladder, lo + width * 1e-9), hi)
                cand = np.where(np.isfinite(frac), ladder, cand)
            cand = np.where(active, cand, lo)
            if zero_point:  # every side: the zero point decides feasibility
                slack, v = self.slack(self.values(np.vstack([lo, cand])))
                active &= self.at_zero(slack[0], v[:1])
                slack_lo, slack, v, zero_point = slack[0], slack[1:], v[1:], False
                slack_lo_old = slack_lo
            else:
                slack_lo_old = slack_lo
                start = self.interpolated_start(cand, lo, hi, v_hi)
                slack, v = self.slack(self.values(cand), self.sides_of(active), start)
            bad = ~self.kept(slack)  # (K, G)
            has_bad = bad.any(axis=0)
            first_bad = np.where(has_bad, bad.argmax(axis=0), N_CANDIDATES)
            last_good = first_bad - 1
            moved = active & (last_good >= 0)
            row = np.maximum(last_good, 0)
            below = row - 1  # the candidate under the new lo (-1: the old lo)
            prev = np.where(moved, np.where(below >= 0, cand[below, cols], lo), prev)
            below_c = np.where(below[grp] >= 0, slack[below[grp], at_c], slack_lo_old)
            slack_prev = np.where(moved[grp], below_c, slack_prev)
            lo = np.where(moved, cand[row, cols], lo)
            self.keep_start(v, row, moved)
            slack_lo = np.where(moved[grp], slack[row[grp], at_c], slack_lo)
            shrunk = active & has_bad
            row = np.minimum(first_bad, N_CANDIDATES - 1)
            hi = np.where(shrunk, cand[row, cols], hi)
            slack_hi = np.where(shrunk[grp], slack[row[grp], at_c], slack_hi)
            # the voltages at hi where its power flow converged: the next candidates start
            # between them and those at lo
            v_hi = np.where(shrunk[self.start_group][:, None, :], self.pick(v, row), v_hi)
            solved_hi = np.isfinite(self.group_min(slack_hi))
            v_hi[~solved_hi[self.start_group][:, None, :].repeat(v_hi.shape[1], axis=1)] = np.nan
            # done once a constraint crossed between lo and hi is (nearly) tight at lo and
            # falls there: a feasible point below lo had more slack, or the bracket is
            # closed (a tight constraint may also rise first, as a line that reactive power
            # relieves until it reverses the line's flow: then the crossing is further up)
            crossing = np.isfinite(slack_hi) & (slack_hi < -FEASIBILITY_TOL)
            closed = hi - lo <= CLOSED_RTOL * width0
            falls = (slack_prev > slack_lo) | closed[grp]
            settled = crossing & (slack_lo <= MARGIN_TOL) & falls
            done = self.group_min(np.where(settled, -1.0, 1.0)) < 0
            active &= ~done & (hi - lo > LEVEL_RTOL * np.maximum(hi, 1.0))
        return lo, lo >= hi, slack_lo

    def interpolated_start(
        self, cand: np.ndarray, lo: np.ndarray, hi: np.ndarray, v_hi: np.ndarray
    ) -> np.ndarray | None:
        """Starting voltages ``(K, S, n_corner, n_bus)`` of candidate levels ``(K, S * G)``:
        on the line from the voltages at ``lo`` (``v_start``) to those at ``hi`` where both
        are known (fewer iterations near the crossing), else the voltages at ``lo``."""
        if self.v_start is None or not np.isfinite(v_hi).any():
            return None
        width = hi - lo
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(width > 0, (cand - lo) / width, 0.0)[:, self.start_group]
        step = v_hi - self.v_start
        known = np.isfinite(step)
        frac = np.where(known.all(axis=1)[None], frac, 0.0)  # (K, S, n_bus)
        step[~known] = 0.0
        return self.v_start[None] + frac[:, :, None, :] * step[None]

    def raise_each(self, base: np.ndarray, members: list[np.ndarray]) -> np.ndarray:
        """Batch of ``base`` (row 0) plus rows that raise one prosumer of each list by 1 %."""
        n_rows = 1 + max((len(m) for m in members), default=0)
        batch = np.repeat(base[None], n_rows, axis=0)
        for m in members:
            batch[np.arange(1, len(m) + 1), m] += np.maximum(PROBE_RAISE * base[m], PROBE_MIN_KW)
        return batch

    def probe(self, level: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """Freeze the rising prosumers of ``groups`` whose 1 % raise alone breaks a limit.

        Returns the constraint slack at ``level``.
        """
        base = self.values(level)
        rising = ~self.frozen & (self.level_of(level) < self.room) & (self.group >= 0)
        rising &= groups[np.maximum(self.group, 0)]
        members = [np.flatnonzero(rising & (self.group == g)) for g in range(self.n_groups)]
        slack, v = self.slack(self.raise_each(base, members))
        kept = self.kept(slack)
        self.keep_start(v, np.zeros(self.n_groups, dtype=int), groups)
        for g, m in enumerate(members):
            if not len(m):
                continue
            rows = np.arange(1, len(m) + 1)
            broken = ~kept[rows, g]
            if not broken.any():  # no single raise breaks a limit: the rise is collective
                broken[:], rows[:] = True, 0
            blocked = np.zeros(len(self.caps), dtype=bool)
            blocked[m[broken]] = True  # each named by the limit its own raise breaks
            self.freeze(blocked, base, self.bindings(slack[rows[broken]], g))
            self.limited[m[broken]] = True
            self.frozen_after[m[broken]] = self.rises
        return slack[0]

    def released(self, values: np.ndarray) -> np.ndarray:
        """Prosumers frozen by a limit whose 1 % raise alone no longer breaks any limit.

        Only prosumers frozen before the last rise of others can have been relieved.
        """
        candidates = self.limited & (self.frozen_after < self.rises)
        members = [np.flatnonzero(candidates & (self.group == g)) for g in range(self.n_groups)]
        released = np.zeros(len(self.caps), dtype=bool)
        if not any(len(m) for m in members):
            return released
        kept = self.kept(self.slack(self.raise_each(values, members))[0])
        for g, m in enumerate(members):
            released[m] = kept[np.arange(1, len(m) + 1), g]
        return released


def crossing_fraction(
    f_prev: np.ndarray, f_lo: np.ndarray, f_hi: np.ndarray, u_prev: np.ndarray
) -> np.ndarray:
    """Where in ``[lo, hi]`` (as a fraction) each constraint's slack crosses 0, from its
    slack ``f_lo >= 0 > f_hi`` there and ``f_prev`` at the fraction ``u_prev < 0`` below lo:
    the root of the quadratic through the three points (two Newton steps from the linear
    estimate; linear where ``f_prev`` is unknown). NaN where ``f_hi`` is not a crossing.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = f_hi - f_lo
        u = np.minimum(np.maximum(f_lo / -delta, 0.0), 1.0)  # np.clip is slower
        curve = (f_prev - f_lo - delta * u_prev) / (u_prev * (u_prev - 1.0))
        curve = np.where(np.isfinite(curve), curve, 0.0)
        for _ in range(2):
            value = f_lo + delta * u + curve * u * (u - 1.0)
            slope = delta + curve * (2.0 * u - 1.0)
            u = np.minimum(np.maximum(u - value / slope, 0.0), 1.0)
    return u


def line_loading_bound(
    pf: RadialPowerFlow, vm_pu: np.ndarray, loading_percent: np.ndarray, vm_min_pu: float
) -> np.ndarray:
    """Per line, the loading (fraction of the rating) the envelopes hold below the limit.

    The larger terminal current times the larger terminal voltage bounds the apparent power
    at either end; divided by ``vm_min_pu`` it bounds the current of any operating point
    with at most that apparent power and every voltage at least ``vm_min_pu`` (a rise of other
    prosumers' imports lowers a line's voltage and so raises its current at the same power).
    Shapes ``(..., n_bus)`` and ``(..., n_line)`` give ``(..., n_line)``.
    """
    f = pf.feeder
    vm_end = np.maximum(vm_pu[..., f.from_bus], vm_pu[..., f.to_bus])
    return loading_percent / 100.0 * vm_end / vm_min_pu


def compute_envelopes(
    pf: RadialPowerFlow,
    prosumer_bus: np.ndarray,
    p_other_kw: np.ndarray,
    q_other_kvar: np.ndarray,
    max_export_kw: np.ndarray,
    max_import_kw: np.ndarray,
    fairness: Fairness | str = Fairness.EQUAL,
    weights: np.ndarray | None = None,
    vm_min_pu: float = VM_MIN_PU,
    vm_max_pu: float = VM_MAX_PU,
    max_loading_percent: float = 100.0,
    inverter_kva: np.ndarray | None = None,
) -> Envelopes:
    """Active and reactive envelopes per prosumer such that every combination of prosumers
    inside them keeps every non-slack voltage in ``[vm_min_pu, vm_max_pu]`` and every line
    loading at most ``max_loading_percent`` (the four corners of ``docs/grid.md``).

    ``prosumer_bus``: bus index per prosumer (several may share a bus). ``p_other_kw``,
    ``q_other_kvar``: forecast injections ``(n_bus,)`` of everything else (including the
    prosumers' loads' reactive power). ``max_export_kw``/``max_import_kw``: physical maxima
    (>= 0). ``fairness``: ``"equal"`` (the same kW for all on both sides) or
    ``"proportional"``: export limits proportional to ``weights`` (e.g. PV kWp, >= 0), import
    limits equal (PV size says nothing about what a household may draw). ``inverter_kva``:
    inverter ratings (>= 0); the reactive range of the inverters, an equal fraction of each
    rating, is searched after the active limits (None: every range is ``[0, 0]``).
    """
    feeder = pf.feeder
    bus = _int_vector("prosumer_bus", prosumer_bus)
    n_p = len(bus)
    if n_p and (bus.min() < 0 or bus.max() >= feeder.n_bus):
        raise InvalidInput(f"prosumer_bus must be in 0..{feeder.n_bus - 1}, got {bus.tolist()}")
    p_other = _vector("p_other_kw", p_other_kw, feeder.n_bus)
    q_other = _vector("q_other_kvar", q_other_kvar, feeder.n_bus)
    export_max = _vector("max_export_kw", max_export_kw, n_p, nonneg=True)
    import_max = _vector("max_import_kw", max_import_kw, n_p, nonneg=True)
    kva = None if inverter_kva is None else _vector("inverter_kva", inverter_kva, n_p, nonneg=True)
    equal = np.ones(n_p)
    if fairness == "equal":
        export_w = equal
    elif fairness == "proportional":
        if weights is None:
            raise InvalidInput("fairness='proportional' needs weights (e.g. PV kWp per prosumer)")
        export_w = _vector("weights", weights, n_p, nonneg=True)
    else:
        raise InvalidInput(f"fairness must be one of {', '.join(Fairness)}, got {fairness!r}")
    if not 0 < vm_min_pu < vm_max_pu:
        raise InvalidInput(f"need 0 < vm_min_pu < vm_max_pu, got {vm_min_pu!r}, {vm_max_pu!r}")
    if not max_loading_percent > 0:
        raise InvalidInput(f"max_loading_percent must be > 0, got {max_loading_percent!r}")
    incidence = np.zeros((n_p, feeder.n_bus))
    incidence[np.arange(n_p), bus] = 1.0
    s_other = (p_other + 1j * q_other) / KW_PER_PU
    s_other[feeder.slack_bus] = 0.0
    group = feeder.branch_of_bus[bus]
    margin: tuple[float, ...] = ()
    n_power_flows = 0
    for _ in range(MAX_MARGIN_PASSES):
        limits = (vm_min_pu, vm_max_pu, max_loading_percent, margin)
        env = _water_fill(
            pf, incidence, s_other, group, (export_w, equal), (export_max, import_max), kva, limits
        )
        n_power_flows += env.n_power_flows
        rise, vm_hi, vm_lo = voltage_rise_above_corner(pf, incidence, s_other, env)
        n_power_flows += 2
        used = np.asarray(margin) if margin else np.zeros(len(rise))
        # a bus whose rise (fall) beyond the corners the margin already covers is secure,
        # also where a corner passes the limit (a branch infeasible at zero)
        unsafe = vm_hi + rise > vm_max_pu - VOLTAGE_MARGIN_PU + FEASIBILITY_TOL
        unsafe |= vm_lo - rise < vm_min_pu + VOLTAGE_MARGIN_PU - FEASIBILITY_TOL
        if not (unsafe & (rise > used + FEASIBILITY_TOL)).any():
            break
        margin = tuple(np.maximum(used, rise * MARGIN_GROWTH).tolist())
    return replace(env, fairness=fairness, n_power_flows=n_power_flows)


def voltage_rise_above_corner(
    pf: RadialPowerFlow, incidence: np.ndarray, s_other: np.ndarray, env: Envelopes
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """How far each non-slack voltage may rise inside the box of ``env`` above its value at
    the upper corner ``(export_kw, q_max_kvar)`` (and fall below its value at the lower
    corner ``(-import_kw, q_min_kvar)``: the same bound), and the voltages at both corners
    (pu, ``(n_non_slack,)`` each).

    A bus voltage's derivative w.r.t. any injection falls as any injection rises (its
    Hessian is <= 0 entrywise: ``docs/grid.md``), so over the box it is smallest at the
    upper corner, and ``vm(x) <= vm(c) + sum_k max(0, -dvm/dx_k(c)) (c_k - lo_k)``, likewise
    ``vm(x) >= vm(lo) - (the same sum)``. The sum is > 0 only where an injection *lowers*
    a voltage at the upper corner (reverse flow through a transformer's reactance);
    elsewhere the corners are the box's highest and lowest points and the rise is 0.
    """
    s = (
        s_other
        + np.stack([env.export_kw + 1j * env.q_max_kvar, -env.import_kw + 1j * env.q_min_kvar])
        @ incidence
        / KW_PER_PU
    )
    p_kw, q_kvar = s.real * KW_PER_PU, s.imag * KW_PER_PU
    corners = pf.solve(p_kw, q_kvar)
    bus = np.flatnonzero(incidence.any(axis=0))
    upper = pf.solve(p_kw[0], q_kvar[0])
    with single_blas_thread():
        dvm_dp, dvm_dq = voltage_sensitivities(pf, upper, p_kw[0], q_kvar[0], bus)
    width_p = (env.export_kw + env.import_kw) @ incidence[:, bus]  # summed per bus
    width_q = (env.q_max_kvar - env.q_min_kvar) @ incidence[:, bus]
    ns = pf.non_slack
    rise = np.maximum(-dvm_dp[ns], 0.0) @ width_p + np.maximum(-dvm_dq[ns], 0.0) @ width_q
    return rise, corners.vm_pu[0, ns], corners.vm_pu[1, ns]


def _water_fill(
    pf: RadialPowerFlow,
    incidence: np.ndarray,
    s_other: np.ndarray,
    group: np.ndarray,
    weights: tuple[np.ndarray, np.ndarray],
    maxima: tuple[np.ndarray, np.ndarray],
    kva: np.ndarray | None,
    limits: Limits,
) -> Envelopes:
    """The two stages of :func:`compute_envelopes` for one set of limits."""
    n_p = len(group)
    cons = _constraints(pf)

    def stage(corners: np.ndarray, w: np.ndarray, caps: np.ndarray, dirs: list[complex]) -> _Side:
        return _Side(pf, cons, incidence, corners, group, w, caps, np.array(dirs), limits)

    p_stage = stage(
        np.stack([s_other[None], s_other[None]]),
        np.stack(weights),
        np.stack(maxima),
        [EXPORT, IMPORT],
    )
    with single_blas_thread(), np.errstate(all="ignore"):
        (export_kw, import_kw), (export_ok, import_ok) = p_stage.run()
        stages = [p_stage]
        q_max_kvar, q_absorb_kvar = np.zeros(n_p), np.zeros(n_p)
        no_q = ("no reactive range asked",) * n_p
        q_max_why, q_min_why = no_q, no_q
        if kva is not None:  # around both active corners: all at export, all at import limits
            corners = s_other + np.stack([export_kw, -import_kw]) @ incidence / KW_PER_PU
            both, ratings = np.stack([corners, corners]), np.stack([kva, kva])
            q_stage = stage(both, ratings, ratings, [Q_MAX, Q_MIN])
            (q_max_kvar, q_absorb_kvar), _ = q_stage.run()
            q_max_why, q_min_why = q_stage.reasons(0), q_stage.reasons(1)
            stages.append(q_stage)
    return Envelopes(
        export_kw=export_kw,
        import_kw=import_kw,
        q_min_kvar=0.0 - q_absorb_kvar,
        q_max_kvar=q_max_kvar,
        export_feasible=bool(export_ok),
        import_feasible=bool(import_ok),
        export_binding=p_stage.reasons(0),
        import_binding=p_stage.reasons(1),
        q_max_binding=q_max_why,
        q_min_binding=q_min_why,
        fairness="",
        n_power_flows=sum(s.n_power_flows for s in stages),
    )


def fixed_envelopes(
    max_export_kw: np.ndarray,
    max_import_kw: np.ndarray,
    export_cap_kw: np.ndarray | None,
    inverter_kva: np.ndarray | None,
) -> Envelopes:
    """Envelopes that ignore the network: export ``min(max_export_kw, export_cap_kw)`` (the
    static rule; ``None``: no cap), import ``max_import_kw`` and the inverter's whole rating
    as reactive range (``None``: ``[0, 0]``, no Var market). No power flow is solved."""
    export_max = np.asarray(max_export_kw, dtype=float)
    n_p = export_max.shape[0]
    export_max = _vector("max_export_kw", export_max, n_p, nonneg=True)
    import_max = _vector("max_import_kw", max_import_kw, n_p, nonneg=True)
    capped = export_cap_kw is not None
    cap = export_max
    if export_cap_kw is not None:
        cap = _vector("export_cap_kw", export_cap_kw, n_p, nonneg=True)
    no_q = inverter_kva is None
    kva = np.zeros(n_p)
    if inverter_kva is not None:
        kva = _vector("inverter_kva", inverter_kva, n_p, nonneg=True)
    export_kw = np.minimum(export_max, cap)
    export_why = tuple(
        "static export cap" if capped and c < m else "physical maximum"
        for c, m in zip(cap, export_max, strict=True)
    )
    q_why = ("no reactive range asked" if no_q else "inverter rating",) * n_p
    return Envelopes(
        export_kw=export_kw,
        import_kw=import_max.copy(),
        q_min_kvar=0.0 - kva,
        q_max_kvar=kva.copy(),
        export_feasible=True,
        import_feasible=True,
        export_binding=export_why,
        import_binding=("physical maximum",) * n_p,
        q_max_binding=q_why,
        q_min_binding=q_why,
        fairness=EnvelopeRule.STATIC if capped else EnvelopeRule.NONE,
        n_power_flows=0,
    )


def _int_vector(name: str, values: np.ndarray) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise InvalidInput(f"{name} must be a 1-D integer array, got {arr.dtype} {arr.shape}")
    return arr.astype(np.int64)


def _vector(name: str, values: np.ndarray, n: int, nonneg: bool = False) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.shape != (n,):
        raise InvalidInput(f"{name} must have shape ({n},), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise InvalidInput(f"{name} must be finite, got {arr[~np.isfinite(arr)][:3].tolist()}")
    if nonneg and (arr < 0).any():
        raise InvalidInput(f"{name} must be >= 0, got {arr[arr < 0][:3].tolist()}")
    return arr
