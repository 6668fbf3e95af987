"""Envelopes behind a transformer: a voltage that is not monotone in the injections.

Behind the CIGRE MV network's 110/20 kV transformers (X/R = 75) a large reverse flow puts
the low-voltage busbar past the top of its voltage curve: there a smaller export, or an
import downstream, *raises* the voltage, so the upper corner of the box is not its highest
point (issue 22: the random policy reached 1.0500068 pu at bus 12 on test day 36). The
envelopes hold the tangent-plane bound of :func:`dso.doe.voltage_rise_above_corner`
(``docs/grid.md``); these tests check the box of that interval by our power flow (every
corner mix of the branch with the transformer, and a scan through the interior along each
of its prosumers) and its highest point by pandapower ``runpp``.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest

from abm.config import Market, SimConfig
from abm.inputs.run_inputs import build_run_inputs
from dso.agent import PublicationRules, base_injection, publication
from dso.doe import Envelopes, compute_envelopes, voltage_rise_above_corner
from dso.networks import DATA_DIR
from dso.powerflow import KW_PER_PU, RadialPowerFlow
from dso.sensitivity import voltage_sensitivities
from tests.dso.feeders import power_flow, reference

CIGRE = str(DATA_DIR / "cigre_mv.json")
VM_MIN, VM_MAX = 0.95, 1.05
#: How far a point may pass the limits: the power flow's noise.
NOISE_PU = 1e-9
#: Interior points per prosumer scan.
N_SCAN = 101


@functools.cache
def _interval() -> tuple[dict, Envelopes]:
    """``p2pvar simulate --network dso/data/cigre_mv.json --first-day 36``, hour 15: the
    inputs and the envelopes the DSO publishes (a forecast interval, not a simulation)."""
    pf = power_flow(CIGRE)
    config = SimConfig(network=CIGRE, market=Market.MULTI, first_day=36)
    fc = build_run_inputs(config, feeder=pf.feeder).forecast
    env, _ = publication(pf, fc, 15, var_market=True, rules=PublicationRules())
    p_other, q_other, _, _ = base_injection(fc, 15)
    return {"bus": fc.prosumer_bus, "p_other": p_other, "q_other": q_other}, env


def _inject(pf: RadialPowerFlow, case: dict, p: np.ndarray, q: np.ndarray) -> tuple:
    incidence = np.zeros((len(case["bus"]), pf.feeder.n_bus))
    incidence[np.arange(len(case["bus"])), case["bus"]] = 1.0
    return case["p_other"] + p @ incidence, case["q_other"] + q @ incidence


def _points(pf: RadialPowerFlow, case: dict, env: Envelopes) -> tuple[np.ndarray, np.ndarray]:
    """Points ``(p, q)`` of the box: on the transformer's branch 1 every combination of its
    prosumers' four corners (the others at each of the four common corners), on branch 0
    every combination of its prosumers' active vertices (reactive at q_max and at q_min),
    and scans through each prosumer's active range with everyone else at a common corner."""
    branch = pf.feeder.branch_of_bus[case["bus"]]
    p_vertex = np.array([env.export_kw, -env.import_kw])
    q_vertex = np.array([env.q_max_kvar, env.q_min_kvar])
    ps, qs = [], []
    for a, c in itertools.product(range(2), repeat=2):  # the others' common corner
        for b in (0, 1):
            members = np.flatnonzero(branch == b)
            n_q = 2 if b == 1 else 1  # branch 0: 2^10 active mixes at a common q
            for mix in itertools.product(range(2), repeat=len(members) * n_q):
                p, q = p_vertex[a].copy(), q_vertex[c].copy()
                p[members] = p_vertex[list(mix[: len(members)]), members]
                if n_q == 2:
                    q[members] = q_vertex[list(mix[len(members) :]), members]
                ps.append(p)
                qs.append(q)
        u = np.linspace(0.0, 1.0, N_SCAN)
        for k in range(len(branch)):
            p = np.repeat(p_vertex[a][None], N_SCAN, axis=0)
            p[:, k] = -env.import_kw[k] + u * (env.export_kw[k] + env.import_kw[k])
            ps.extend(p)
            qs.extend(np.repeat(q_vertex[c][None], N_SCAN, axis=0))
    return np.array(ps), np.array(qs)


def test_box_behind_a_transformer_is_secure() -> None:
    """Every point of the box keeps 0.95-1.05 pu by our power flow; its highest and lowest
    points keep them by pandapower ``runpp``. Before the tangent-plane margin the scan
    through p11's active range (its busbar at the transformer, 7.0 MW export and 5.2 Mvar
    q_max) reached 1.0501567 pu at an export of 3.06 MW."""
    pf, ref = power_flow(CIGRE), reference(CIGRE)
    case, env = _interval()
    assert env.export_feasible and env.import_feasible
    p, q = _points(pf, case, env)
    res = pf.solve(*_inject(pf, case, p, q))
    vm = np.delete(res.vm_pu, pf.feeder.slack_bus, axis=1)
    assert vm.max() <= VM_MAX + NOISE_PU, vm.max()
    assert vm.min() >= VM_MIN - NOISE_PU, vm.min()
    for row in (int(vm.max(axis=1).argmax()), int(vm.min(axis=1).argmin())):
        p_bus, q_bus = _inject(pf, case, p[row], q[row])
        vm_ref = np.delete(ref.solve(p_bus, q_bus).vm_pu, pf.feeder.slack_bus)
        assert vm_ref.min() >= VM_MIN - 1e-8 and vm_ref.max() <= VM_MAX + 1e-8, row


def test_the_margin_binds_only_where_the_voltage_falls_with_an_injection() -> None:
    """On this interval an injection lowers the busbar voltages at the upper corner (the
    rise bound is > 0 there); on ieee33 every voltage rises with every injection, so the
    corner is the box's highest point and the margin is 0 (envelopes unchanged)."""
    pf = power_flow(CIGRE)
    case, env = _interval()
    incidence = np.zeros((len(case["bus"]), pf.feeder.n_bus))
    incidence[np.arange(len(case["bus"])), case["bus"]] = 1.0
    s_other = (case["p_other"] + 1j * case["q_other"]) / KW_PER_PU
    rise, vm_hi, vm_lo = voltage_rise_above_corner(pf, incidence, s_other, env)
    assert rise.max() > 1e-5
    assert (vm_hi + rise).max() <= VM_MAX - 1e-10 + 1e-12
    assert (vm_lo - rise).min() >= VM_MIN + 1e-10 - 1e-12
    ieee = power_flow("ieee33")
    f = ieee.feeder
    n_p = f.n_bus - 1
    bus = np.delete(np.arange(f.n_bus), f.slack_bus)
    env33 = compute_envelopes(
        ieee,
        bus,
        -0.3 * f.load_p_kw,
        -0.3 * f.load_q_kvar,
        np.full(n_p, 400.0),
        np.full(n_p, 300.0),
        inverter_kva=np.full(n_p, 200.0),
    )
    inc33 = np.zeros((n_p, f.n_bus))
    inc33[np.arange(n_p), bus] = 1.0
    s33 = (-0.3 * f.load_p_kw - 0.3j * f.load_q_kvar) / KW_PER_PU
    rise33, _, _ = voltage_rise_above_corner(ieee, inc33, s33, env33)
    assert rise33.max() == 0.0


def test_voltage_is_concave_along_random_segments_of_the_box() -> None:
    """The tangent-plane bound needs each voltage concave over the box: sampled on random
    segments of this interval's box, the midpoint is never below the chord."""
    pf = power_flow(CIGRE)
    case, env = _interval()
    rng = np.random.default_rng(0)
    lo = np.concatenate([-env.import_kw, env.q_min_kvar])
    hi = np.concatenate([env.export_kw, env.q_max_kvar])
    a, b = lo + rng.uniform(size=(2, 300, len(lo))) * (hi - lo)
    x = np.concatenate([a, b, (a + b) / 2])
    n = len(env.export_kw)
    vm = pf.solve(*_inject(pf, case, x[:, :n], x[:, n:])).vm_pu.reshape(3, 300, -1)
    assert (vm[2] - (vm[0] + vm[1]) / 2).min() >= -NOISE_PU


@pytest.mark.parametrize("network", ["ieee33", CIGRE], ids=["ieee33", "cigre_mv"])
def test_voltage_sensitivities_match_central_differences(network: str) -> None:
    pf = power_flow(network)
    f = pf.feeder
    rng = np.random.default_rng(1)
    p = -f.load_p_kw * rng.uniform(-3, 1, f.n_bus)
    q = -f.load_q_kvar * rng.uniform(-2, 1, f.n_bus)
    buses = np.array([3, 12, f.slack_bus])
    dvm_dp, dvm_dq = voltage_sensitivities(pf, pf.solve(p, q), p, q, buses)
    h = 1e-2
    for col, b in enumerate(buses):
        step = np.zeros(f.n_bus)
        step[b] = h
        fd_p = (pf.solve(p + step, q).vm_pu - pf.solve(p - step, q).vm_pu) / (2 * h)
        fd_q = (pf.solve(p, q + step).vm_pu - pf.solve(p, q - step).vm_pu) / (2 * h)
        scale = max(np.abs(fd_p).max(), np.abs(fd_q).max(), 1e-12)
        assert np.abs(fd_p - dvm_dp[:, col]).max() <= 1e-6 * scale
        assert np.abs(fd_q - dvm_dq[:, col]).max() <= 1e-6 * scale
