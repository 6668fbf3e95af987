"""AC power flow of a radial feeder, single or batched (many scenarios at once, numpy).

Method (``docs/grid.md``): implicit Z-bus fixed point. With the slack voltage fixed, the
non-slack voltages are affine in the bus current injections ``I``:
``V = V_nl + Z I``, where ``Z`` inverts the non-slack bus admittance matrix (built
exactly from the tree's path sums) and ``V_nl`` is the no-load voltage (line charging
included). Constant-power injections give ``I = conj(S / V)``; the iteration
``V <- V_nl + Z conj(S / V)`` runs only over buses with a non-zero injection and stops
when no voltage moves by more than ``tol_pu``. Line currents and the slack current are
affine in ``I`` too, so every output comes from one matrix product after convergence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dso.blas import single_blas_thread
from dso.errors import InvalidInput, PowerFlowDidNotConverge
from dso.networks import Feeder
from dso.trafo import pi_model_pu

S_BASE_MVA = 1.0
#: The voltage band every bus must stay in, pu: the envelopes keep it, and a bus outside it
#: in an interval counts as a voltage violation.
VM_MIN_PU = 0.95
VM_MAX_PU = 1.05
KW_PER_PU = 1000.0 * S_BASE_MVA
US_PER_S = 1e6
DEFAULT_MAX_ITER = 100
#: A batch iterates in single precision until no voltage moves by this much (pu), then
#: in double precision: far above single precision's rounding (~1e-7 pu), so it is reached.
COARSE_TOL_PU = 1e-5
#: Scenarios per block in a batched solve: small enough for the block's arrays to stay in
#: cache (128-512 measured alike on a 2-core machine), large enough to amortise calls.
CHUNK_ROWS = 256
#: Reduced (per injection pattern) matrices kept per power flow object.
SUBSET_CACHE_SIZE = 64
#: Scenario indices named in a non-convergence message before "and N more".
MAX_NAMED_SCENARIOS = 10


@dataclass(frozen=True)
class PowerFlowResult:
    """Solution of one or a batch of power flows (leading batch axis iff the input had one).

    ``loss_kw`` is the active power taken by the lines (slack power plus all non-slack
    injections). ``i_line_ka`` is the larger of a line's two terminal currents (as
    pandapower). ``p_slack_kw``/``q_slack_kvar`` flow from the slack bus into the lines.
    """

    vm_pu: np.ndarray  # (..., n_bus)
    loss_kw: np.ndarray  # (...,)
    i_line_ka: np.ndarray  # (..., n_line)
    loading_percent: np.ndarray  # (..., n_line)
    p_slack_kw: np.ndarray  # (...,)
    q_slack_kvar: np.ndarray  # (...,)
    iterations: int
    v_pu: np.ndarray  # (..., n_bus) complex bus voltages

    @property
    def va_deg(self) -> np.ndarray:
        """Voltage angles (degrees), ``(..., n_bus)``."""
        return np.angle(self.v_pu, deg=True)


@dataclass(frozen=True)
class _Reduced:
    """The model restricted to the non-slack buses ``cols`` that carry an injection.

    Both maps carry their constant term as an extra last row, so that one product with
    ``[I, 1]`` evaluates them.
    """

    cols: np.ndarray  # positions in the non-slack bus vector
    inj_bus: np.ndarray  # their bus indices
    z_aug_t: np.ndarray  # (k + 1, k): Z between the ``cols`` buses (transposed), then V_nl
    z_aug_t_single: np.ndarray  # the same in single precision (coarse start of a batch)
    out_aug_t: np.ndarray  # (k + 1, n_out): output map columns (transposed), then out0


class RadialPowerFlow:
    """AC power flow of one feeder; all topology-dependent matrices are built once here."""

    def __init__(
        self, feeder: Feeder, tol_pu: float = 1e-10, max_iter: int = DEFAULT_MAX_ITER
    ) -> None:
        if not tol_pu > 0:
            raise InvalidInput(f"tol_pu must be > 0, got {tol_pu!r}")
        if max_iter < 1:
            raise InvalidInput(f"max_iter must be >= 1, got {max_iter!r}")
        self.feeder = feeder
        self.tol_pu = float(tol_pu)
        self.max_iter = int(max_iter)
        n, n_line, slack = feeder.n_bus, feeder.n_line, feeder.slack_bus
        self.non_slack = np.array([b for b in range(n) if b != slack])
        position = np.full(n, -1)
        position[self.non_slack] = np.arange(n - 1)
        frm, to = feeder.from_bus, feeder.to_bus
        z_line, y_from, y_to, a, ends = _branch_model(feeder)
        #: Per bus, the complex ratio that refers its voltage to the slack side of every
        #: transformer: the model solves ``V' = bus_ratio · V`` (1 without transformers).
        self.bus_ratio = a
        self._referred = bool(np.any(a != 1))
        y_bus = np.zeros(n, dtype=complex)
        np.add.at(y_bus, frm, y_from)
        np.add.at(y_bus, to, y_to)
        y_shunt = y_bus[self.non_slack]
        # path[j, l] = 1 if line l lies on the path from the slack to non-slack bus j
        path = np.zeros((n - 1, n_line))
        for line in feeder.lines_root_first:
            parent, child = frm[line], to[line]
            if parent != slack:
                path[position[child]] = path[position[parent]]
            path[position[child], line] = 1.0
        #: ``path[j, l] = 1`` if line ``l`` is on the path from the slack to non-slack bus ``j``
        #: (rows in :attr:`non_slack` order); series resistance of each branch (pu of its
        #: child bus: the loss of a branch is ``r_line_pu |I_child|²``).
        self.path = path
        self.r_line_pu = z_line.real / np.abs(a[to]) ** 2
        z_tree = (path * z_line) @ path.T
        coupling = np.eye(n - 1) + z_tree * y_shunt
        self.v_slack = feeder.vm_slack_pu * np.exp(1j * np.deg2rad(feeder.va_slack_deg))
        self.z = np.linalg.solve(coupling, z_tree)  # (m, m), symmetric
        self.v_nl = np.linalg.solve(coupling, np.full(n - 1, self.v_slack))
        # outputs (bus voltages, from-end line currents, slack current) = out0 + out @ I
        v0 = np.full(n, self.v_slack, dtype=complex)
        v0[self.non_slack] = self.v_nl
        v_map = np.zeros((n, n - 1), dtype=complex)
        v_map[self.non_slack] = self.z
        ser0 = path.T @ (y_shunt * self.v_nl)
        ser_map = path.T @ (y_shunt[:, None] * self.z) - path.T
        from0 = ser0 + y_from * v0[frm]
        from_map = ser_map + y_from[:, None] * v_map[frm]
        at_slack = frm == slack
        #: d(slack current into the lines) / d(non-slack current injections), (m,)
        self.slack_current_coeff = from_map[at_slack].sum(axis=0)
        # the to-end current follows elementwise: I_to = I_from - y_from V_from - y_to V_to
        self._y_from, self._y_to = y_from, y_to
        self._charging = bool(np.any(y_from != 0) or np.any(y_to != 0))
        self._out0 = np.concatenate([v0, from0, [from0[at_slack].sum()]])
        out = np.vstack([v_map, from_map, self.slack_current_coeff])
        self._out_t = np.ascontiguousarray(out.T)
        self._subsets: dict[bytes, _Reduced] = {}
        self._all = self._reduced(np.arange(n - 1))
        #: kA per pu (referred) current and rating (kA) at each end of each branch
        self._ends = ends
        self._i_base_ka = S_BASE_MVA / (np.sqrt(3) * feeder.vn_kv)
        self._loading_per_ka = 100.0 / feeder.i_max_ka

    # -- public API ------------------------------------------------------------------------

    def solve(self, p_inj_kw: np.ndarray, q_inj_kvar: np.ndarray) -> PowerFlowResult:
        """Solve for total bus injections (kW, kvar; ``(n_bus,)`` or ``(B, n_bus)``).

        The slack entry is ignored. Raises :class:`PowerFlowDidNotConverge` naming the
        batch indices of the scenarios that did not converge.
        """
        s_pu, batched = self.injections_pu(p_inj_kw, q_inj_kvar)
        if batched:
            return self.solve_pu(s_pu, self.tol_pu, raise_on_failure=True)[0]
        nonzero = s_pu[0, self.non_slack] != 0
        red = self._all if nonzero.all() else self._reduced(np.flatnonzero(nonzero))
        arrays, iterations, _ = self._solve(s_pu, red, self.tol_pu, True, None)
        return PowerFlowResult(**{k: a[0] for k, a in arrays.items()}, iterations=iterations)

    def injections_pu(
        self, p_inj_kw: np.ndarray, q_inj_kvar: np.ndarray
    ) -> tuple[np.ndarray, bool]:
        """Per-unit injections ``(B, n_bus)`` (slack zeroed) and whether the input was batched."""
        p = np.asarray(p_inj_kw, dtype=float)
        q = np.asarray(q_inj_kvar, dtype=float)
        n = self.feeder.n_bus
        if p.shape != q.shape or p.ndim not in (1, 2) or p.shape[-1] != n:
            raise InvalidInput(
                f"p_inj_kw {p.shape} and q_inj_kvar {q.shape} must both be ({n},) or (B, {n})"
            )
        s: np.ndarray = np.empty(p.shape, dtype=complex)
        np.divide(p, KW_PER_PU, out=s.real)
        np.divide(q, KW_PER_PU, out=s.imag)
        s = s.reshape(-1, n)
        s[:, self.feeder.slack_bus] = 0.0
        return s, p.ndim == 2

    def solve_pu(
        self,
        s_pu: np.ndarray,
        tol_pu: float,
        raise_on_failure: bool,
        v_start: np.ndarray | None = None,
    ) -> tuple[PowerFlowResult, np.ndarray]:
        """Batched solve of per-unit injections ``(B, n_bus)`` (slack entries must be 0).

        ``v_start``: bus voltages to start from, ``(n_bus,)`` for every scenario or
        ``(B, n_bus)`` one row per scenario (default: the no-load voltages). Returns the
        result and a ``(B,)`` convergence mask; with
        ``raise_on_failure`` a scenario that does not converge raises
        :class:`PowerFlowDidNotConverge` instead.
        """
        cols = np.flatnonzero((s_pu != 0).any(axis=0)[self.non_slack])
        arrays, iterations, ok = self._solve(
            s_pu, self._reduced(cols), tol_pu, raise_on_failure, v_start
        )
        return PowerFlowResult(**arrays, iterations=iterations), ok

    # -- internals -------------------------------------------------------------------------

    def _reduced(self, cols: np.ndarray) -> _Reduced:
        key = cols.tobytes()
        red = self._subsets.get(key)
        if red is None:
            if len(self._subsets) >= SUBSET_CACHE_SIZE:
                self._subsets.clear()
            z_aug_t = np.ascontiguousarray(
                np.vstack([self.z[np.ix_(cols, cols)].T, self.v_nl[cols]])
            )
            red = _Reduced(
                cols,
                self.non_slack[cols],
                z_aug_t,
                z_aug_t.astype(np.complex64),
                np.ascontiguousarray(np.vstack([self._out_t[cols], self._out0])),
            )
            self._subsets[key] = red
        return red

    def _solve(
        self,
        s_pu: np.ndarray,
        red: _Reduced,
        tol_pu: float,
        raise_on_failure: bool,
        v_start: np.ndarray | None,
    ) -> tuple[dict[str, np.ndarray], int, np.ndarray]:
        """Solve ``(B, n_bus)`` injections block by block, with one BLAS thread.

        Returns the arrays of a :class:`PowerFlowResult`, the iterations and the ``(B,)``
        convergence mask.
        """
        b, n, n_line = len(s_pu), self.feeder.n_bus, self.feeder.n_line
        inj_bus = red.inj_bus
        v0 = None if v_start is None else v_start[..., inj_bus]
        if v0 is not None and self._referred:
            v0 = v0 * self.bus_ratio[inj_bus]
        res = {
            "vm_pu": np.empty((b, n)),
            "loss_kw": np.empty(b),
            "i_line_ka": np.empty((b, n_line)),
            "loading_percent": np.empty((b, n_line)),
            "p_slack_kw": np.empty(b),
            "q_slack_kvar": np.empty(b),
            "v_pu": np.empty((b, n), dtype=complex),
        }
        ok = np.ones(b, dtype=bool)
        iterations = 0
        with single_blas_thread():
            for first in range(0, b, CHUNK_ROWS):
                rows = slice(first, first + CHUNK_ROWS)
                s_conj = np.conj(s_pu[rows, inj_bus])
                start = v0 if v0 is None or v0.ndim == 1 else v0[rows]
                its, ok[rows] = self._solve_block(s_conj, red, tol_pu, start, res, rows)
                iterations = max(iterations, its)
        if raise_on_failure and not ok.all():
            self._raise_not_converged(s_pu, ok, tol_pu)
        return res, iterations, ok

    def _solve_block(
        self,
        s_conj: np.ndarray,
        red: _Reduced,
        tol_pu: float,
        v_start: np.ndarray | None,
        res: dict[str, np.ndarray],
        rows: slice,
    ) -> tuple[int, np.ndarray]:
        """Solve ``(R, k)`` conjugate injections at the ``red.cols`` buses into ``res[rows]``.

        Returns the iterations and the ``(R,)`` converged mask.
        """
        aug, iterations, converged = self._iterate(s_conj, red, tol_pu, v_start)
        f, n = self.feeder, self.feeder.n_bus
        out = aug @ red.out_aug_t  # bus voltages, from-end line currents, slack current
        v_bus = res["v_pu"][rows]
        v_bus[...] = out[:, :n]
        i_from = out[:, n : n + f.n_line]
        i_ka = res["i_line_ka"][rows]
        if self._ends.uniform:  # one voltage level, one rating per line
            np.abs(i_from, out=i_ka)
            if self._charging:  # the larger of the two terminal currents (as pandapower)
                i_to = i_from - self._y_from * (v_bus[:, f.from_bus] + v_bus[:, f.to_bus])
                np.maximum(i_ka, np.abs(i_to), out=i_ka)
            i_ka *= self._i_base_ka
            np.multiply(i_ka, self._loading_per_ka, out=res["loading_percent"][rows])
        else:  # each end in its own base and rating (transformers)
            e = self._ends
            i_to = i_from - self._y_from * v_bus[:, f.from_bus] - self._y_to * v_bus[:, f.to_bus]
            ka_from = np.abs(i_from) * e.ka_per_pu_from
            ka_to = np.abs(i_to) * e.ka_per_pu_to
            np.maximum(ka_from, ka_to, out=i_ka)
            np.maximum(ka_from / e.i_max_from_ka, ka_to / e.i_max_to_ka, out=ka_from)
            np.multiply(ka_from, 100.0, out=res["loading_percent"][rows])
        if self._referred:
            v_bus /= self.bus_ratio
        np.abs(v_bus, out=res["vm_pu"][rows])
        s_slack = self.v_slack * np.conj(out[:, -1]) * KW_PER_PU
        res["p_slack_kw"][rows] = s_slack.real
        res["q_slack_kvar"][rows] = s_slack.imag
        res["loss_kw"][rows] = s_slack.real + s_conj.real.sum(axis=1) * KW_PER_PU
        return iterations, converged

    def _iterate(
        self, s_conj: np.ndarray, red: _Reduced, tol_pu: float, v_start: np.ndarray | None = None
    ) -> tuple[np.ndarray, int, np.ndarray]:
        """Fixed point on the injection buses of ``(R, k)`` conjugate injections.

        Starts from ``v_start`` (``(k,)`` or one row per scenario) or the no-load voltages;
        a batch first iterates
        in single precision down to ``COARSE_TOL_PU`` (half the cost per iteration), then in
        double precision to ``tol_pu`` (each phase at most ``max_iter`` iterations). Returns
        ``[I, 1]`` (the currents of the last voltages, then a column of ones), the
        iterations and the ``(R,)`` converged mask.
        """
        rows, k = s_conj.shape
        if k == 0:  # no injection anywhere: the no-load voltages are the solution
            return np.ones((rows, 1), dtype=complex), 0, np.ones(rows, dtype=bool)
        v = np.empty((rows, k), dtype=complex)
        v[...] = red.z_aug_t[k] if v_start is None else v_start
        coarse = 0
        with np.errstate(all="ignore"):  # a diverging scenario is reported, not warned about
            if rows > 1:
                v_single, _, _, coarse = _contract(
                    s_conj.astype(np.complex64),
                    v.astype(np.complex64),
                    red.z_aug_t_single,
                    COARSE_TOL_PU,
                    self.max_iter,
                )
                if coarse > 1:  # else the start was already closer than single precision
                    finite = np.isfinite(v_single).all(axis=1)
                    if finite.all():
                        v[...] = v_single
                    else:
                        v[finite] = v_single[finite]  # a diverged scenario starts afresh
            if rows == 1:  # one scenario: vectors (matrix-vector products are cheaper)
                s_conj, v = s_conj[0], v[0]
            v, step, aug, fine = _contract(s_conj, v, red.z_aug_t, tol_pu, self.max_iter)
            np.divide(s_conj, np.conj(v), out=aug[..., :k])
            converged = np.abs(step).max(axis=-1) < tol_pu
        return aug.reshape(rows, k + 1), coarse + fine, converged.reshape(rows)

    def _raise_not_converged(self, s_pu: np.ndarray, ok: np.ndarray, tol_pu: float) -> None:
        bad = np.flatnonzero(~ok)
        if not np.isfinite(s_pu).all():
            row, bus = np.argwhere(~np.isfinite(s_pu))[0]
            raise InvalidInput(f"injection of scenario {row} at bus {bus} is not finite")
        named = ", ".join(str(i) for i in bad[:MAX_NAMED_SCENARIOS])
        more = (
            f" and {len(bad) - MAX_NAMED_SCENARIOS} more" if len(bad) > MAX_NAMED_SCENARIOS else ""
        )
        raise PowerFlowDidNotConverge(
            f"power flow on {self.feeder.name} did not converge within {self.max_iter} "
            f"iterations (tol {tol_pu:g} pu) for scenario {named}{more} (batch index)"
        )


def _contract(
    s_conj: np.ndarray, v: np.ndarray, z_aug_t: np.ndarray, tol_pu: float, max_iter: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Iterate ``V <- V_nl + Z conj(S / V)`` from ``v`` (``(R, k)`` or ``(k,)``, reused as a
    buffer) in the arguments' precision until no voltage moves by ``tol_pu`` (scenarios
    with a NaN left out) or none is finite.

    Returns the last voltages, their last step, the ``[I, 1]`` buffer (currents of the last
    voltages but one) and the iterations. Works in preallocated buffers.
    """
    k = v.shape[-1]
    aug = np.ones((*v.shape[:-1], k + 1), dtype=v.dtype)
    currents = aug[..., :k]
    v_new = np.empty_like(v)
    step = np.empty_like(v)
    step_parts = np.empty((*v.shape[:-1], 2 * k), dtype=v.real.dtype)
    iteration = 0
    for iteration in range(1, max_iter + 1):  # noqa: B007 - used after the loop
        np.divide(s_conj, np.conj(v, out=step), out=currents)
        np.matmul(aug, z_aug_t, out=v_new)
        np.subtract(v_new, v, out=step)
        v, v_new = v_new, v
        if v.ndim == 1:  # the 2-norm: no smaller than the largest move, cheap to call
            err = math.sqrt(np.vdot(step, step).real)
        else:  # the largest real or imaginary part first: a cheaper lower bound; a
            # diverged (NaN) scenario is left out, so that it does not stop the others
            err = np.fmax.reduce(np.abs(step.view(step_parts.dtype), out=step_parts), axis=None)
            if err < tol_pu:
                err = np.fmax.reduce(np.abs(step), axis=None)
        if err < tol_pu or not math.isfinite(err):
            break
    return v, step, aug, iteration


@dataclass(frozen=True)
class _BranchEnds:
    """kA per pu of (referred) current and rating (kA) at each end of each branch."""

    ka_per_pu_from: np.ndarray
    ka_per_pu_to: np.ndarray
    i_max_from_ka: np.ndarray
    i_max_to_ka: np.ndarray
    uniform: bool  # one base and one rating for every end (no transformer)


def _branch_model(
    feeder: Feeder,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, _BranchEnds]:
    """Every branch as a pi in the slack-side (referred) per unit system (``docs/grid.md``).

    Returns the series impedance, the shunt admittance at the from (parent) and to (child)
    end, the bus ratio ``a`` (``V' = a V``: each transformer's ideal ratio folded into the
    buses below it) and the current bases and ratings of the ends. A line is a pi in the
    per unit of its voltage level; a transformer is the pi of its T model in the per unit
    of its low-voltage bus behind an ideal ratio ``N`` at its high-voltage side
    (:func:`dso.trafo.pi_model_pu`). Referred to the slack side, an impedance behind the
    buses' ratio ``a`` is multiplied by ``|a|²`` and an admittance divided by it; powers are
    unchanged.
    """
    frm, to, t = feeder.from_bus, feeder.to_bus, feeder.trafos
    vn = feeder.bus_vn_kv
    z_base = vn**2 / S_BASE_MVA
    z = (feeder.r_ohm + 1j * feeder.x_ohm) / z_base[frm]
    y_from = 0.5j * feeder.b_us / US_PER_S * z_base[frm]
    y_to = y_from.copy()
    step = np.ones(feeder.n_line, dtype=complex)  # V'_child / V'_parent ratio of the bases
    pi_side = to.copy()  # the bus at whose side a branch's pi lies
    i_max_from = feeder.i_max_ka.copy()
    i_max_to = feeder.i_max_ka.copy()
    if len(t):
        br = t.branch
        hv_parent = frm[br] == t.hv_bus
        lv = np.where(hv_parent, to[br], frm[br])
        z[br], y_hv, y_lv, ratio = pi_model_pu(
            t, feeder.r_ohm[br] + 1j * feeder.x_ohm[br], vn[t.hv_bus], vn[lv]
        )
        y_from[br] = np.where(hv_parent, y_hv, y_lv)
        y_to[br] = np.where(hv_parent, y_lv, y_hv)
        step[br] = np.where(hv_parent, ratio, 1 / ratio)
        pi_side[br] = lv
        i_max_from[br] = np.where(hv_parent, t.i_max_hv_ka, feeder.i_max_ka[br])
        i_max_to[br] = np.where(hv_parent, feeder.i_max_ka[br], t.i_max_hv_ka)
    a = np.ones(feeder.n_bus, dtype=complex)
    for line in feeder.lines_root_first:
        a[to[line]] = a[frm[line]] * step[line]
    scale = np.abs(a[pi_side]) ** 2
    i_base_ka = S_BASE_MVA / (np.sqrt(3) * vn)
    ends = _BranchEnds(
        ka_per_pu_from=np.abs(a[frm]) * i_base_ka[frm],
        ka_per_pu_to=np.abs(a[to]) * i_base_ka[to],
        i_max_from_ka=i_max_from,
        i_max_to_ka=i_max_to,
        uniform=not len(t),
    )
    return z * scale, y_from / scale, y_to / scale, a, ends
