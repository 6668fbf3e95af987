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

S_BASE_MVA = 1.0
KW_PER_PU = 1000.0 * S_BASE_MVA
US_PER_S = 1e6
DEFAULT_MAX_ITER = 100
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
    va_deg: np.ndarray  # (..., n_bus)
    loss_kw: np.ndarray  # (...,)
    i_line_ka: np.ndarray  # (..., n_line)
    loading_percent: np.ndarray  # (..., n_line)
    p_slack_kw: np.ndarray  # (...,)
    q_slack_kvar: np.ndarray  # (...,)
    iterations: int
    v_pu: np.ndarray  # (..., n_bus) complex bus voltages


@dataclass(frozen=True)
class _Reduced:
    """The model restricted to the non-slack buses ``cols`` that carry an injection.

    Both maps carry their constant term as an extra last row, so that one product with
    ``[I, 1]`` evaluates them.
    """

    cols: np.ndarray  # positions in the non-slack bus vector
    z_aug_t: np.ndarray  # (k + 1, k): Z between those buses (transposed), then V_nl
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
        z_base_ohm = feeder.vn_kv**2 / S_BASE_MVA
        z_line = (feeder.r_ohm + 1j * feeder.x_ohm) / z_base_ohm
        y_half = 0.5j * feeder.b_us / US_PER_S * z_base_ohm
        y_bus = np.zeros(n, dtype=complex)
        np.add.at(y_bus, feeder.from_bus, y_half)
        np.add.at(y_bus, feeder.to_bus, y_half)
        y_shunt = y_bus[self.non_slack]
        # path[j, l] = 1 if line l lies on the path from the slack to non-slack bus j
        path = np.zeros((n - 1, n_line))
        for line in feeder.lines_root_first:
            parent, child = feeder.from_bus[line], feeder.to_bus[line]
            if parent != slack:
                path[position[child]] = path[position[parent]]
            path[position[child], line] = 1.0
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
        frm = feeder.from_bus
        from0 = ser0 + y_half * v0[frm]
        from_map = ser_map + y_half[:, None] * v_map[frm]
        at_slack = frm == slack
        #: d(slack current into the lines) / d(non-slack current injections), (m,)
        self.slack_current_coeff = from_map[at_slack].sum(axis=0)
        # the to-end current follows elementwise: I_to = I_from - y_half (V_from + V_to)
        self._y_half = y_half
        self._charging = bool(np.any(y_half != 0))
        self._out0 = np.concatenate([v0, from0, [from0[at_slack].sum()]])
        out = np.vstack([v_map, from_map, self.slack_current_coeff])
        self._out_t = np.ascontiguousarray(out.T)
        self._i_base_ka = S_BASE_MVA / (np.sqrt(3) * feeder.vn_kv)
        self._subsets: dict[bytes, _Reduced] = {}
        self._all = self._reduced(np.arange(n - 1))
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
        s_ns = s_pu[0, self.non_slack]
        nonzero = s_ns != 0
        if nonzero.all():
            red = self._all
        else:
            red = self._reduced(np.flatnonzero(nonzero))
            s_ns = s_ns[red.cols]
        aug, iterations, converged = self._iterate(np.conj(s_ns), red, self.tol_pu)
        if not converged:
            self._raise_not_converged(s_pu, np.array([False]), self.tol_pu)
        return self._result(aug @ red.out_aug_t, s_pu[0], iterations)

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
        s = (p + 1j * q) / KW_PER_PU
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
        s_ns = s_pu[:, self.non_slack]
        cols = np.flatnonzero(np.any(s_ns != 0, axis=0))
        red = self._reduced(cols)
        v0 = None if v_start is None else v_start[..., self.non_slack[cols]]
        b = len(s_pu)
        out = np.empty((b, red.out_aug_t.shape[1]), dtype=complex)
        ok = np.ones(b, dtype=bool)
        iterations = 0
        with single_blas_thread():
            for first in range(0, b, CHUNK_ROWS):
                rows = slice(first, first + CHUNK_ROWS)
                s_conj = np.conj(s_ns[rows][:, cols])
                start = v0 if v0 is None or v0.ndim == 1 else v0[rows]
                aug, its, ok[rows] = self._iterate(s_conj, red, tol_pu, start)
                iterations = max(iterations, its)
                np.matmul(aug, red.out_aug_t, out=out[rows])
        if raise_on_failure and not ok.all():
            self._raise_not_converged(s_pu, ok, tol_pu)
        return self._result(out, s_pu, iterations), ok

    # -- internals -------------------------------------------------------------------------

    def _reduced(self, cols: np.ndarray) -> _Reduced:
        key = cols.tobytes()
        red = self._subsets.get(key)
        if red is None:
            if len(self._subsets) >= SUBSET_CACHE_SIZE:
                self._subsets.clear()
            z_t = self.z[np.ix_(cols, cols)].T
            red = _Reduced(
                cols,
                np.ascontiguousarray(np.vstack([z_t, self.v_nl[cols]])),
                np.ascontiguousarray(np.vstack([self._out_t[cols], self._out0])),
            )
            self._subsets[key] = red
        return red

    def _iterate(
        self, s_conj: np.ndarray, red: _Reduced, tol_pu: float, v_start: np.ndarray | None = None
    ) -> tuple[np.ndarray, int, np.ndarray]:
        """Fixed point on the injection buses of ``(k,)`` or ``(B, k)`` conjugate injections.

        Starts from ``v_start`` (``(k,)`` or one row per scenario) or the no-load voltages.
        Returns ``[I, 1]`` (currents of the last voltages, then a column of ones), the
        iterations and the converged mask (``(B,)``, or ``()`` for one scenario). Works in
        preallocated buffers: the loop allocates nothing.
        """
        k = s_conj.shape[-1]
        aug = np.ones((*s_conj.shape[:-1], k + 1), dtype=complex)
        if k == 0:  # no injection anywhere: the no-load voltages are the solution
            return aug, 0, np.ones(s_conj.shape[:-1], dtype=bool)
        currents = aug[..., :k]
        v = np.empty_like(s_conj)
        v[...] = red.z_aug_t[k] if v_start is None else v_start
        v_new = np.empty_like(s_conj)
        step = np.zeros_like(s_conj)
        step_abs = np.empty(s_conj.shape)
        single = s_conj.ndim == 1
        iteration = 0
        with np.errstate(all="ignore"):  # a diverging scenario is reported, not warned about
            for iteration in range(1, self.max_iter + 1):  # noqa: B007 - used after the loop
                np.divide(s_conj, np.conj(v, out=step), out=currents)
                np.matmul(aug, red.z_aug_t, out=v_new)
                np.subtract(v_new, v, out=step)
                v, v_new = v_new, v
                if single:
                    err = math.sqrt(np.vdot(step, step).real)
                else:
                    err = np.abs(step, out=step_abs).max()
                if err < tol_pu or not math.isfinite(err):
                    break
            np.divide(s_conj, np.conj(v), out=currents)
            converged = np.abs(step).max(axis=-1) < tol_pu
        return aug, iteration, converged

    def _result(self, out: np.ndarray, s_pu: np.ndarray, iterations: int) -> PowerFlowResult:
        """Result arrays from outputs ``(..., n_out)`` and injections ``(..., n_bus)``."""
        n, n_line = self.feeder.n_bus, self.feeder.n_line
        magnitude = np.abs(out)
        v = out[..., :n]
        i_from = out[..., n : n + n_line]
        i_ka = magnitude[..., n : n + n_line]
        if self._charging:  # the larger of the two terminal currents
            f = self.feeder
            i_to = i_from - self._y_half * (v[..., f.from_bus] + v[..., f.to_bus])
            np.maximum(i_ka, np.abs(i_to), out=i_ka)
        i_ka *= self._i_base_ka
        s_slack = self.v_slack * np.conj(out[..., -1]) * KW_PER_PU
        return PowerFlowResult(
            vm_pu=magnitude[..., :n],
            va_deg=np.angle(v, deg=True),
            loss_kw=s_slack.real + s_pu.real.sum(axis=-1) * KW_PER_PU,
            i_line_ka=i_ka,
            loading_percent=i_ka * self._loading_per_ka,
            p_slack_kw=s_slack.real,
            q_slack_kvar=s_slack.imag,
            iterations=iterations,
            v_pu=v,
        )

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
