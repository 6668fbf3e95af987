"""Loss sensitivity factors: exact derivatives of the network loss w.r.t. bus injections.

Derivation (``docs/grid.md``): at the power flow solution the non-slack current injections
``I = conj(S / V)`` satisfy ``I = G(I, S) = conj(S) / conj(V_nl + Z I)`` and the loss is
``L = Re(conj(V_s) I_slack(I)) + sum(P)``, with ``I_slack = a0 + c . I`` affine. Differentiating
the fixed point gives ``dI = -D conj(Z) conj(dI) + conj(dS) / conj(V)`` with
``D = diag(I / conj(V))``. The adjoint ``mu`` solves ``mu = g - conj(Z) (D conj(mu))`` with
``g = V_s conj(c)`` (the same contraction as the power flow, iterated to convergence), and
``dL/dP_i = 1 + Re(mu_i / V_i)``, ``dL/dQ_i = -Im(mu_i / V_i)`` in kW/kW and kW/kvar.
The slack bus has 0: its injection is taken by the grid and never enters the lines.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from dso.errors import PowerFlowDidNotConverge
from dso.powerflow import KW_PER_PU, PowerFlowResult, RadialPowerFlow

#: Relative convergence tolerance of the adjoint iteration (w.r.t. max |g|).
ADJOINT_RTOL = 1e-12


@dataclass(frozen=True)
class LossSensitivities:
    """Loss sensitivity factors at one operating point (or a batch, leading axis kept)."""

    dloss_dp: np.ndarray  # (..., n_bus) kW of loss per kW injected at the bus
    dloss_dq: np.ndarray  # (..., n_bus) kW of loss per kvar injected at the bus
    loss_kw: np.ndarray  # (...,)
    vm_pu: np.ndarray  # (..., n_bus)
    power_flow: PowerFlowResult


#: Per power flow object: ``conj(Z)`` and the adjoint's constant term ``g``, built once.
_ADJOINT: weakref.WeakKeyDictionary[RadialPowerFlow, tuple[np.ndarray, np.ndarray]] = (
    weakref.WeakKeyDictionary()
)


def _adjoint_constants(pf: RadialPowerFlow) -> tuple[np.ndarray, np.ndarray]:
    cached = _ADJOINT.get(pf)
    if cached is None:
        cached = _ADJOINT[pf] = (np.conj(pf.z), pf.v_slack * np.conj(pf.slack_current_coeff))
    return cached


def loss_sensitivities(
    pf: RadialPowerFlow, p_inj_kw: np.ndarray, q_inj_kvar: np.ndarray
) -> LossSensitivities:
    """Solve the power flow for the injections and differentiate its loss exactly.

    Injections as for :meth:`RadialPowerFlow.solve` (``(n_bus,)`` or ``(B, n_bus)``).
    Raises :class:`PowerFlowDidNotConverge` if the power flow or the adjoint does not.
    """
    result = pf.solve(p_inj_kw, q_inj_kvar)
    return sensitivities_at(pf, result, p_inj_kw, q_inj_kvar)


def sensitivities_at(
    pf: RadialPowerFlow, result: PowerFlowResult, p_inj_kw: np.ndarray, q_inj_kvar: np.ndarray
) -> LossSensitivities:
    """:func:`loss_sensitivities` at an already solved power flow ``result`` of the
    injections (the adjoint only)."""
    ns = pf.non_slack
    s_ns = np.asarray(p_inj_kw, float)[..., ns] + 1j * np.asarray(q_inj_kvar, float)[..., ns]
    v_ns = result.v_pu[..., ns] * pf.bus_ratio[ns]  # the model's (referred) voltages
    v_conj = np.conj(v_ns)
    d = np.conj(s_ns / KW_PER_PU) / (v_conj * v_conj)  # I / conj(V)
    z_conj, g = _adjoint_constants(pf)
    tol = ADJOINT_RTOL * np.abs(g).max()
    mu = np.broadcast_to(g, d.shape)
    for _ in range(pf.max_iter):
        mu_new = g - (d * np.conj(mu)) @ z_conj
        step = np.abs(mu_new - mu).max(initial=0.0)
        mu = mu_new
        if step < tol:
            break
    else:
        raise PowerFlowDidNotConverge(
            f"loss sensitivity adjoint on {pf.feeder.name} did not converge within "
            f"{pf.max_iter} iterations (last step {step:.3g})"
        )
    w = mu / v_ns
    dloss_dp = np.zeros(result.vm_pu.shape)
    dloss_dq = np.zeros(result.vm_pu.shape)
    dloss_dp[..., ns] = 1.0 + w.real
    dloss_dq[..., ns] = -w.imag
    return LossSensitivities(dloss_dp, dloss_dq, result.loss_kw, result.vm_pu, result)


def voltage_sensitivities(
    pf: RadialPowerFlow,
    result: PowerFlowResult,
    p_inj_kw: np.ndarray,
    q_inj_kvar: np.ndarray,
    buses: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact derivatives of every bus voltage magnitude w.r.t. the active and the reactive
    injection at ``buses`` (default: every bus), at one solved power flow ``result`` of the
    injections ``(n_bus,)``.

    Differentiating ``V = V_nl + Z conj(S / V)`` (non-slack buses, referred) gives
    ``dV + Z D conj(dV) = Z conj(dS) / conj(V)`` with ``D = diag(conj(S) / conj(V)²)``, a
    real-linear system solved once; ``d|V_i| = Re(conj(V_i) dV_i) / |V_i|``. Returns
    ``(dvm_dp, dvm_dq)``, ``(n_bus, len(buses))`` in pu per kW and per kvar (row: the
    voltage's bus; the slack's row, and a column of the slack bus, are 0).
    """
    n_bus, ns = pf.feeder.n_bus, pf.non_slack
    m = len(ns)
    cols = np.arange(n_bus) if buses is None else np.asarray(buses)
    position = np.full(n_bus, -1)
    position[ns] = np.arange(m)
    at = position[cols] >= 0
    s_ns = (np.asarray(p_inj_kw, float)[ns] + 1j * np.asarray(q_inj_kvar, float)[ns]) / KW_PER_PU
    v_ns = result.v_pu[ns] * pf.bus_ratio[ns]  # the model's (referred) voltages
    v_conj = np.conj(v_ns)
    zd = pf.z * (np.conj(s_ns) / (v_conj * v_conj))  # Z D
    eye = np.eye(m)
    lhs = np.block([[eye + zd.real, zd.imag], [zd.imag, eye - zd.real]])
    # conj(dS) = 1 kW (real) or -j 1 kvar at each column's bus
    r = pf.z[:, position[cols[at]]] / v_conj[position[cols[at]]] / KW_PER_PU
    rhs = np.block([[r.real, r.imag], [r.imag, -r.real]])
    dv = np.linalg.solve(lhs, rhs)
    dvm = (v_ns.real[:, None] * dv[:m] + v_ns.imag[:, None] * dv[m:]) / np.abs(v_ns)[:, None]
    dvm /= np.abs(pf.bus_ratio[ns])[:, None]  # |V| = |V'| / |a|
    dvm_dp, dvm_dq = np.zeros((n_bus, len(cols))), np.zeros((n_bus, len(cols)))
    k = int(at.sum())
    dvm_dp[np.ix_(ns, np.flatnonzero(at))] = dvm[:, :k]
    dvm_dq[np.ix_(ns, np.flatnonzero(at))] = dvm[:, k:]
    return dvm_dp, dvm_dq
