"""pandapower as the reference solver, for validation and benchmarks only.

``p2pvar bench grid`` and the validation tests solve with pandapower through this module,
so pandapower stays a ``dso/`` import.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dso.networks import KW_PER_MW, Feeder, to_pandapower

#: runpp mismatch tolerance for validation: pandapower's default (it does not converge much
#: tighter on swiss161, whose shortest lines make its admittance matrix ill-conditioned).
REFERENCE_TOLERANCE_MVA = 1e-8


@dataclass(frozen=True)
class ReferenceResult:
    """pandapower's answer for one scenario (bus and branch order as in the feeder; a
    transformer's current is the larger of its two sides', its loading against the
    feeder's rated currents)."""

    vm_pu: np.ndarray
    va_deg: np.ndarray
    loss_kw: float
    i_line_ka: np.ndarray
    loading_percent: np.ndarray
    p_slack_kw: float
    q_slack_kvar: float


class PandapowerReference:
    """One pandapower network of a feeder, re-solved for any bus injections with ``runpp``."""

    def __init__(self, feeder: Feeder) -> None:
        self.feeder = feeder
        self.net = to_pandapower(feeder)
        self._buses = self.net.load.bus.to_numpy()
        t = feeder.trafos
        self._lines = np.setdiff1d(np.arange(feeder.n_line), t.branch)  # pandapower's lines
        self._i_max_ka = np.stack([t.i_max_hv_ka, feeder.i_max_ka[t.branch]], axis=1)

    def solve(
        self,
        p_inj_kw: np.ndarray,
        q_inj_kvar: np.ndarray,
        tolerance_mva: float = REFERENCE_TOLERANCE_MVA,
    ) -> ReferenceResult:
        """Run pandapower ``runpp`` (Newton-Raphson) for injections ``(n_bus,)`` kW/kvar."""
        import pandapower as pp

        net = self.net
        net.load["p_mw"] = -np.asarray(p_inj_kw, dtype=float)[self._buses] / KW_PER_MW
        net.load["q_mvar"] = -np.asarray(q_inj_kvar, dtype=float)[self._buses] / KW_PER_MW
        pp.runpp(net, numba=False, tolerance_mva=tolerance_mva, max_iteration=50)
        n_line, t = self.feeder.n_line, self.feeder.trafos
        i_ka, loading = np.empty(n_line), np.empty(n_line)
        i_ka[self._lines] = net.res_line.i_ka.to_numpy()
        loading[self._lines] = net.res_line.loading_percent.to_numpy()
        loss_mw = net.res_line.pl_mw.sum()
        if len(t):  # loading from the currents and the feeder's rated current at each side
            i_ends = net.res_trafo[["i_hv_ka", "i_lv_ka"]].to_numpy()
            i_ka[t.branch] = i_ends.max(axis=1)
            loading[t.branch] = 100.0 * (i_ends / self._i_max_ka).max(axis=1)
            loss_mw += net.res_trafo.pl_mw.sum()
        return ReferenceResult(
            vm_pu=net.res_bus.vm_pu.to_numpy(),
            va_deg=net.res_bus.va_degree.to_numpy(),
            loss_kw=float(loss_mw * KW_PER_MW),
            i_line_ka=i_ka,
            loading_percent=loading,
            p_slack_kw=float(net.res_ext_grid.p_mw.iloc[0] * KW_PER_MW),
            q_slack_kvar=float(net.res_ext_grid.q_mvar.iloc[0] * KW_PER_MW),
        )

    def runpp_default(self) -> None:
        """``runpp`` with pandapower's default settings on the current loads (timing baseline)."""
        import pandapower as pp

        pp.runpp(self.net, numba=False)
