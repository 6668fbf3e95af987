"""Loss sensitivity factors: exact, checked against central finite differences of runpp."""

from __future__ import annotations

import numpy as np
import pytest

from abm.bench.synthetic_cases import random_injections
from dso.powerflow import RadialPowerFlow
from dso.reference import PandapowerReference
from dso.sensitivity import loss_sensitivities

#: Per feeder: finite-difference step (kW or kvar), runpp tolerance (MVA), buses checked
#: against runpp (None: all), and whether the operating point has strong reverse flow.
FD_SETUP = {
    "ieee33": (2.0, 1e-10, 12, False),
    "swiss161": (10.0, 1e-8, 10, True),
}


def _operating_point(pf: RadialPowerFlow, reverse: bool) -> tuple[np.ndarray, np.ndarray]:
    p, q = pf.feeder.base_injection()
    if reverse:
        p = p + 2.5 * pf.feeder.load_p_kw  # PV exporting 1.5x every bus load
    return p, q


def test_matches_finite_differences_of_runpp(
    name: str, pf: RadialPowerFlow, ref: PandapowerReference
) -> None:
    step, tolerance_mva, n_sample, reverse = FD_SETUP[name]
    p, q = _operating_point(pf, reverse)
    lsf = loss_sensitivities(pf, p, q)
    buses = np.delete(np.arange(pf.feeder.n_bus), pf.feeder.slack_bus)
    if n_sample is not None:
        buses = np.random.default_rng(0).choice(buses, n_sample, replace=False)

    def loss(dp: float, dq: float, bus: int) -> float:
        p2, q2 = p.copy(), q.copy()
        p2[bus] += dp
        q2[bus] += dq
        return ref.solve(p2, q2, tolerance_mva=tolerance_mva).loss_kw

    fd_p = [(loss(step, 0, b) - loss(-step, 0, b)) / (2 * step) for b in buses]
    fd_q = [(loss(0, step, b) - loss(0, -step, b)) / (2 * step) for b in buses]
    np.testing.assert_allclose(lsf.dloss_dp[buses], fd_p, rtol=1e-3, atol=1e-7)
    np.testing.assert_allclose(lsf.dloss_dq[buses], fd_q, rtol=1e-3, atol=1e-7)
    assert lsf.loss_kw == pytest.approx(ref.solve(p, q).loss_kw, abs=1e-4)


def test_matches_own_finite_differences_everywhere(pf: RadialPowerFlow) -> None:
    f = pf.feeder
    p_all, q_all = random_injections(f, 1, np.random.default_rng(3))
    p, q = p_all[0], q_all[0]
    lsf = loss_sensitivities(pf, p, q)
    step = 0.1  # kW: truncation error ~1e-9 relative, well above the solver's noise
    eye = np.eye(f.n_bus) * step
    loss_p = pf.solve(p + eye, np.broadcast_to(q, eye.shape)).loss_kw
    loss_m = pf.solve(p - eye, np.broadcast_to(q, eye.shape)).loss_kw
    np.testing.assert_allclose(lsf.dloss_dp, (loss_p - loss_m) / (2 * step), rtol=1e-5, atol=1e-9)
    loss_p = pf.solve(np.broadcast_to(p, eye.shape), q + eye).loss_kw
    loss_m = pf.solve(np.broadcast_to(p, eye.shape), q - eye).loss_kw
    np.testing.assert_allclose(lsf.dloss_dq, (loss_p - loss_m) / (2 * step), rtol=1e-5, atol=1e-9)


def test_slack_has_zero_sensitivity_and_loads_have_negative(pf: RadialPowerFlow) -> None:
    f = pf.feeder
    lsf = loss_sensitivities(pf, *f.base_injection())
    assert lsf.dloss_dp[f.slack_bus] == 0 and lsf.dloss_dq[f.slack_bus] == 0
    loaded = f.load_p_kw > 0
    assert (lsf.dloss_dp[loaded] < 0).all()  # injecting at a load bus saves loss
    assert (lsf.dloss_dq[loaded] < 0).all()


def test_batch_equals_single(pf: RadialPowerFlow) -> None:
    p, q = random_injections(pf.feeder, 4, np.random.default_rng(5))
    batch = loss_sensitivities(pf, p, q)
    assert batch.dloss_dp.shape == p.shape and batch.loss_kw.shape == (4,)
    for i in range(4):
        single = loss_sensitivities(pf, p[i], q[i])
        np.testing.assert_allclose(single.dloss_dp, batch.dloss_dp[i], rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(single.dloss_dq, batch.dloss_dq[i], rtol=1e-10, atol=1e-13)
        assert single.loss_kw == pytest.approx(batch.loss_kw[i], rel=1e-9)


def test_empty_batch(pf: RadialPowerFlow) -> None:
    empty = np.zeros((0, pf.feeder.n_bus))
    assert loss_sensitivities(pf, empty, empty).dloss_dp.shape == empty.shape
    assert pf.solve(empty, empty).loss_kw.shape == (0,)
