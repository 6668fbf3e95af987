"""The radial AC power flow: regression anchors and agreement with pandapower ``runpp``."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from abm.bench.synthetic_cases import random_injections
from dso.errors import InvalidInput, PowerFlowDidNotConverge
from dso.networks import DATA_DIR, Feeder, load_network
from dso.powerflow import CHUNK_ROWS, PowerFlowResult, RadialPowerFlow
from dso.reference import PandapowerReference, ReferenceResult
from tests.dso.conftest import FEEDERS

N_RANDOM = 6  # random scenarios per feeder compared with runpp
#: Feeders with transformers and static generators (two voltage levels each), besides FEEDERS.
TRAFO_FEEDERS = tuple(
    str(DATA_DIR / f"{name}.json") for name in ("cigre_mv_pv_wind", "simbench_lv_rural1")
)
WITH_TRAFOS = pytest.mark.parametrize("name", FEEDERS + TRAFO_FEEDERS)


def test_ieee33_base_case_anchors() -> None:
    f = load_network("ieee33")
    result = RadialPowerFlow(f).solve(*f.base_injection())
    assert result.loss_kw == pytest.approx(202.7, abs=0.05)
    assert result.vm_pu.min() == pytest.approx(0.913, abs=5e-4)
    assert int(result.vm_pu.argmin()) == 17  # bus 18 in Baran & Wu's 1-based numbering
    assert result.vm_pu[f.slack_bus] == 1.0


def _compare(result: PowerFlowResult, reference: ReferenceResult) -> None:
    np.testing.assert_allclose(result.vm_pu, reference.vm_pu, rtol=0, atol=1e-6)
    assert abs(result.loss_kw - reference.loss_kw) < 1e-4
    np.testing.assert_allclose(result.va_deg, reference.va_deg, rtol=0, atol=1e-6)
    np.testing.assert_allclose(result.i_line_ka, reference.i_line_ka, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(
        result.loading_percent, reference.loading_percent, rtol=1e-6, atol=1e-6
    )
    assert result.p_slack_kw == pytest.approx(reference.p_slack_kw, abs=1e-4)
    assert result.q_slack_kvar == pytest.approx(reference.q_slack_kvar, abs=1e-4)


@WITH_TRAFOS
def test_base_case_matches_runpp(pf: RadialPowerFlow, ref: PandapowerReference) -> None:
    p, q = pf.feeder.base_injection()
    _compare(pf.solve(p, q), ref.solve(p, q))


@WITH_TRAFOS
def test_random_batch_matches_runpp(pf: RadialPowerFlow, ref: PandapowerReference) -> None:
    p, q = random_injections(pf.feeder, N_RANDOM, np.random.default_rng(7))
    batch = pf.solve(p, q)
    assert batch.vm_pu.shape == (N_RANDOM, pf.feeder.n_bus)
    assert batch.loss_kw.shape == (N_RANDOM,)
    assert (batch.p_slack_kw < 0).any(), "the sample must include strong reverse flow"
    for i in range(N_RANDOM):
        single = pf.solve(p[i], q[i])
        np.testing.assert_allclose(single.vm_pu, batch.vm_pu[i], rtol=0, atol=1e-12)
        _compare(single, ref.solve(p[i], q[i]))


@WITH_TRAFOS
def test_multi_block_batch_matches_single_solves(pf: RadialPowerFlow) -> None:
    """A batch over several blocks (single-precision start, then double) gives every output
    of the one-scenario solve (double precision only) to 1e-9."""
    n_scenarios = 2 * CHUNK_ROWS + 17
    p, q = random_injections(pf.feeder, n_scenarios, np.random.default_rng(11))
    p[:, ::3] = 0.0  # buses without injection: the solver's reduced model
    q[:, ::3] = 0.0
    batch = pf.solve(p, q)
    for i in range(0, n_scenarios, 61):
        single = pf.solve(p[i], q[i])
        for name in ("v_pu", "vm_pu", "i_line_ka", "loading_percent"):
            np.testing.assert_allclose(
                getattr(batch, name)[i], getattr(single, name), rtol=0, atol=1e-9, err_msg=name
            )
        for name in ("loss_kw", "p_slack_kw", "q_slack_kvar"):  # kW: 1e-9 pu is 1e-6 kW
            assert getattr(batch, name)[i] == pytest.approx(getattr(single, name), abs=1e-6)


@WITH_TRAFOS
def test_strong_reverse_flow_matches_runpp(pf: RadialPowerFlow, ref: PandapowerReference) -> None:
    f = pf.feeder
    p = 2.5 * f.load_p_kw  # every loaded bus exports 1.5 times its base load
    q = -0.3 * f.load_q_kvar
    result = pf.solve(p, q)
    assert result.p_slack_kw < -f.load_p_kw.sum()
    _compare(result, ref.solve(p, q))


@WITH_TRAFOS
def test_sparse_injections_match_runpp(pf: RadialPowerFlow, ref: PandapowerReference) -> None:
    f = pf.feeder
    far = int(np.argmin(pf.solve(*f.base_injection()).vm_pu))
    p, q = np.zeros(f.n_bus), np.zeros(f.n_bus)
    p[far], q[far] = -300.0, 100.0  # one injection, every other bus at zero
    _compare(pf.solve(p, q), ref.solve(p, q))


@WITH_TRAFOS
def test_no_injection_gives_no_load_voltages(pf: RadialPowerFlow, ref: PandapowerReference) -> None:
    n = pf.feeder.n_bus
    result = pf.solve(np.zeros(n), np.zeros(n))
    assert result.iterations == 0
    # line charging alone; at 0.4 kV runpp's 1e-8 MVA is 1.4e-8 kA: tighter there (swiss161
    # does not converge much tighter, see dso.reference)
    tolerance_mva = 1e-12 if pf.feeder.bus_vn_kv.min() < 1.0 else 1e-8
    _compare(result, ref.solve(np.zeros(n), np.zeros(n), tolerance_mva=tolerance_mva))
    if (pf.feeder.b_us > 0).any() and not len(pf.feeder.trafos):  # magnetising draws
        assert result.vm_pu.max() > pf.feeder.vm_slack_pu and result.loss_kw > 0


def test_slack_entry_is_ignored(pf: RadialPowerFlow) -> None:
    p, q = pf.feeder.base_injection()
    p2, q2 = p.copy(), q.copy()
    p2[pf.feeder.slack_bus] = -5000.0
    np.testing.assert_array_equal(pf.solve(p, q).vm_pu, pf.solve(p2, q2).vm_pu)


def test_non_convergence_names_the_scenario() -> None:
    f = load_network("ieee33")
    pf = RadialPowerFlow(f)
    p, q = random_injections(f, 5, np.random.default_rng(1))
    p[2] = -40.0 * f.load_p_kw  # far beyond the feeder's loadability
    with pytest.raises(PowerFlowDidNotConverge, match=r"for scenario 2 \(batch index\)") as exc:
        pf.solve(p, q)
    assert "\n" not in str(exc.value)
    with pytest.raises(PowerFlowDidNotConverge, match="scenario 0"):
        pf.solve(p[2], q[2])


@pytest.mark.parametrize(
    ("p_shape", "q_shape"), [((33,), (32,)), ((2, 33), (33,)), ((2, 2, 33), (2, 2, 33))]
)
def test_wrong_shapes_are_refused(p_shape: tuple[int, ...], q_shape: tuple[int, ...]) -> None:
    pf = RadialPowerFlow(load_network("ieee33"))
    with pytest.raises(InvalidInput, match=r"must both be \(33,\) or \(B, 33\)"):
        pf.solve(np.zeros(p_shape), np.zeros(q_shape))


def test_non_finite_injection_is_refused() -> None:
    f = load_network("ieee33")
    p, q = f.base_injection()
    p[4] = np.nan
    with pytest.raises(InvalidInput, match="scenario 0 at bus 4 is not finite"):
        RadialPowerFlow(f).solve(p, q)


def test_bad_settings_are_refused(feeder: Feeder) -> None:
    with pytest.raises(InvalidInput, match="tol_pu"):
        RadialPowerFlow(feeder, tol_pu=0.0)
    with pytest.raises(InvalidInput, match="max_iter"):
        RadialPowerFlow(feeder, max_iter=0)


_IEEE33 = RadialPowerFlow(load_network("ieee33"))


@given(
    load=st.floats(0.0, 1.4),
    pv=st.floats(0.0, 3.0),
    q_share=st.floats(-1.0, 1.0),
)
def test_power_balance_and_positive_loss(load: float, pv: float, q_share: float) -> None:
    f = _IEEE33.feeder
    p = (pv - load) * f.load_p_kw
    q = -q_share * f.load_q_kvar
    result = _IEEE33.solve(p, q)
    assert result.loss_kw >= -1e-9  # rounding only
    assert result.p_slack_kw + p.sum() == pytest.approx(result.loss_kw, abs=1e-9)
    line_loss = (result.i_line_ka**2 * f.r_ohm).sum() * 3  # kA^2 * ohm = MW, three phases
    assert line_loss * 1000 == pytest.approx(result.loss_kw, rel=1e-9, abs=1e-9)
