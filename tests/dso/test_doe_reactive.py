"""Reactive envelopes: every point of the active-reactive box is secure (``docs/grid.md``).

A prosumer's envelope is the box ``-import_kw <= p <= export_kw``,
``q_min_kvar <= q_inverter <= q_max_kvar``. On a radial feeder a voltage rises with every
injection, so the highest voltage of the joint box is at the corner where everyone is at
``(export_kw, q_max_kvar)`` and the lowest at ``(-import_kw, q_min_kvar)``; a line's apparent
power is largest at one of the four corners (export/import x q_max/q_min). The tests sample
the joint box (its corners, mixes of each prosumer's vertices, uniform points) on ieee33,
swiss161 and CIGRE MV feeder 1, with our power flow and with pandapower ``runpp``.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from abm.config import Market, SimConfig
from abm.inputs.run_inputs import build_run_inputs
from dso.agent import PublicationRules, base_injection, publication
from dso.doe import (
    LOADING_MARGIN_PERCENT,
    VOLTAGE_MARGIN_PU,
    Envelopes,
    compute_envelopes,
    line_loading_bound,
)
from dso.networks import DATA_DIR
from dso.powerflow import PowerFlowResult, RadialPowerFlow
from tests.dso.feeders import power_flow, reference

VM_MIN, VM_MAX = 0.95, 1.05
NETWORKS = ("ieee33", "swiss161", str(DATA_DIR / "cigre_mv_feeder1.json"))
IDS = ("ieee33", "swiss161", "cigre_mv_feeder1")
#: Random points of the joint box per case (besides the four corners).
N_POINTS = 400
#: How far a sampled point may pass the limits: the power flow's noise (it runs to 1e-10 pu).
NOISE_PU = 1e-9


def _case(pf: RadialPowerFlow, seed: int) -> tuple[dict, Envelopes]:
    """A random prosumer set, forecast and inverters, and its envelopes."""
    f = pf.feeder
    rng = np.random.default_rng(seed)
    n_p = int(rng.integers(1, 40))
    bus = rng.choice(np.delete(np.arange(f.n_bus), f.slack_bus), n_p)
    size = f.load_p_kw.sum() / n_p
    case = {
        "prosumer_bus": bus,
        "p_other_kw": -f.load_p_kw * rng.uniform(0, 0.8) * rng.uniform(0.5, 1.5, f.n_bus),
        "q_other_kvar": -f.load_q_kvar * rng.uniform(0, 0.8),
        "max_export_kw": rng.uniform(0, 3, n_p) * size * rng.uniform(0.1, 1),
        "max_import_kw": rng.uniform(0, 2, n_p) * size * rng.uniform(0.1, 1),
        "inverter_kva": rng.uniform(0, 3, n_p) * size * (rng.uniform(size=n_p) > 0.2),
        "fairness": str(rng.choice(["equal", "proportional"])),
        "weights": rng.uniform(0, 2, n_p),
    }
    return case, compute_envelopes(pf, **case)


def _points(env: Envelopes, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(p, q_inverter)`` per point ``(4 + N_POINTS, n_prosumer)``: the four corners
    (export/import x q_max/q_min), then mixes of each prosumer's own vertices and uniform
    points of the box."""
    lo_p, hi_p, lo_q, hi_q = -env.import_kw, env.export_kw, env.q_min_kvar, env.q_max_kvar
    n = len(hi_p)
    corners_p = np.array([hi_p, hi_p, lo_p, lo_p])
    corners_q = np.array([hi_q, lo_q, hi_q, lo_q])
    u_p, u_q = rng.uniform(size=(2, N_POINTS, n))
    vertex = rng.uniform(size=N_POINTS) < 0.5
    u_p[vertex], u_q[vertex] = np.round(u_p[vertex]), np.round(u_q[vertex])
    p = np.vstack([corners_p, lo_p + u_p * (hi_p - lo_p)])
    q = np.vstack([corners_q, lo_q + u_q * (hi_q - lo_q)])
    return p, q


def _bus_injections(
    case: dict, p: np.ndarray, q: np.ndarray, n_bus: int
) -> tuple[np.ndarray, np.ndarray]:
    p_bus = np.repeat(case["p_other_kw"][None], len(p), axis=0)
    q_bus = np.repeat(case["q_other_kvar"][None], len(p), axis=0)
    for k, b in enumerate(case["prosumer_bus"]):
        p_bus[:, b] += p[:, k]
        q_bus[:, b] += q[:, k]
    return p_bus, q_bus


def _non_slack(pf: RadialPowerFlow, vm: np.ndarray) -> np.ndarray:
    return np.delete(np.atleast_2d(vm), pf.feeder.slack_bus, axis=1)


@pytest.mark.parametrize("network", NETWORKS, ids=IDS)
@given(seed=st.integers(0, 2**32 - 1))
@settings(max_examples=12)
def test_every_point_of_the_box_is_secure(network: str, seed: int) -> None:
    pf = power_flow(network)
    case, env = _case(pf, seed)
    kva = case["inverter_kva"]
    assert (env.q_min_kvar <= 0).all() and (env.q_max_kvar >= 0).all()
    assert (env.q_max_kvar <= kva).all() and (env.q_min_kvar >= -kva).all()
    if not (env.export_feasible and env.import_feasible):  # violated at zero: 0 there
        return
    p, q = _points(env, np.random.default_rng(seed))
    res: PowerFlowResult = pf.solve(*_bus_injections(case, p, q, pf.feeder.n_bus))
    vm = _non_slack(pf, res.vm_pu)
    assert vm.max() <= VM_MAX + NOISE_PU and vm.min() >= VM_MIN - NOISE_PU
    assert res.loading_percent.max() <= 100.0 + 100.0 * NOISE_PU
    # the corners bound the box: highest voltage at (export, q_max), lowest at
    # (import, q_min), every line's apparent power (bound) at one of the four corners, up to
    # loss and charging terms smaller than the loading margin
    assert vm.max(axis=1).max() <= vm[0].max() + NOISE_PU
    assert vm.min(axis=1).min() >= vm[3].min() - NOISE_PU
    bound = line_loading_bound(pf, res.vm_pu, res.loading_percent, VM_MIN)
    excess = bound[4:].max(axis=0) - bound[:4].max(axis=0)
    assert excess.max() < LOADING_MARGIN_PERCENT / 100.0


@pytest.mark.parametrize("network", NETWORKS, ids=IDS)
def test_corners_and_random_points_by_runpp(network: str) -> None:
    pf, ref = power_flow(network), reference(network)
    checked = 0
    for seed in range(60):
        case, env = _case(pf, seed)
        has_range = env.q_max_kvar.any() or env.q_min_kvar.any()
        if not (env.export_feasible and env.import_feasible and has_range):
            continue
        p, q = _points(env, np.random.default_rng(seed))
        p_bus, q_bus = _bus_injections(case, p[:6], q[:6], pf.feeder.n_bus)
        for row in range(6):  # the four corners and two random points
            res = ref.solve(p_bus[row], q_bus[row])
            vm = _non_slack(pf, res.vm_pu)
            assert vm.min() >= VM_MIN - 1e-8 and vm.max() <= VM_MAX + 1e-8, (seed, row)
            assert res.loading_percent.max() <= 100.0 + 1e-6, (seed, row)
        checked += 1
        if checked == 3:
            break
    assert checked == 3, "three cases with a reactive range must be found"


def _not_tight(pf: RadialPowerFlow, case: dict, env: Envelopes) -> tuple[int, list]:
    """Raise each inverter's q_max (and |q_min|) alone, by 1 % and at least 0.1 % of its
    rating (a range at 0 is raised too), everyone else at their q_max (q_min), at both
    active corners. Returns how many raises stay within the ratings, and ``(sign, prosumer,
    range)`` of those that break no limit as the envelopes hold it (tightened by the
    margins): such a range is not tight."""
    kva = case["inverter_kva"]
    p = np.array([env.export_kw, -env.import_kw])  # both active corners per raise
    held = VOLTAGE_MARGIN_PU + 1e-12  # the envelopes' limits, tightened by the margins
    max_bound = (100.0 - LOADING_MARGIN_PERCENT) / 100.0 - 1e-12
    tested, loose = 0, []
    for q_lim, sign in ((env.q_max_kvar, 1.0), (-env.q_min_kvar, -1.0)):
        raised = np.maximum(q_lim * 1.01, q_lim + 1e-3 * kva)
        ks = np.flatnonzero((kva > 0) & (raised < kva))
        q = np.repeat(q_lim[None], len(ks), axis=0)
        q[np.arange(len(ks)), ks] = raised[ks]
        p_bus, q_bus = _bus_injections(
            case, np.tile(p, (len(ks), 1)), sign * q.repeat(2, axis=0), pf.feeder.n_bus
        )
        res = pf.solve(p_bus, q_bus)
        vm = _non_slack(pf, res.vm_pu)
        bound = line_loading_bound(pf, res.vm_pu, res.loading_percent, VM_MIN)
        broken = (vm.max(axis=1) > VM_MAX - held) | (vm.min(axis=1) < VM_MIN + held)
        broken |= bound.max(axis=1) > max_bound
        kept = ~broken.reshape(len(ks), 2).any(axis=1)
        loose += [(sign, int(k), float(q_lim[k])) for k in ks[kept]]
        tested += len(ks)
    return tested, loose


@pytest.mark.parametrize("network", NETWORKS, ids=IDS)
def test_reactive_ranges_are_tight(network: str) -> None:
    """Every reactive range below its inverter rating is tight (:func:`_not_tight`), also a
    range at 0 (before issue 22 a range whose starting point was binding stayed at 0 where
    reactive power relieved the limit: 29 ranges of 378 on swiss161 for these seeds)."""
    pf = power_flow(network)
    tested = 0
    for seed in range(30):
        case, env = _case(pf, seed)
        if not (env.export_feasible and env.import_feasible):
            continue
        n, loose = _not_tight(pf, case, env)
        assert not loose, (seed, loose)
        tested += n
    assert tested > 0, "some reactive range must be held below its inverter rating"


@functools.cache
def _stressed(hour: int) -> tuple[dict, Envelopes]:
    """swiss161 with four times the PV, test day 33 (``p2pvar simulate --network swiss161
    --pv-scale 4 --first-day 33``), the envelopes the DSO publishes at ``hour``, and the
    inputs (a forecast interval, not a simulation)."""
    pf = power_flow("swiss161")
    config = SimConfig(network="swiss161", market=Market.MULTI, pv_scale=4.0, first_day=33)
    fc = build_run_inputs(config, feeder=pf.feeder).forecast
    env, _ = publication(pf, fc, hour, var_market=True, rules=PublicationRules())
    p_other, q_other, _, _ = base_injection(fc, hour)
    case = {
        "prosumer_bus": fc.prosumer_bus,
        "p_other_kw": p_other,
        "q_other_kvar": q_other,
        "inverter_kva": fc.inverter_kva,
    }
    return case, env


#: Midday hours of the stressed day: the active stage leaves a line at its bound at the
#: export corner (106-114 at 10, 95-93 at 12), and injecting reactive power first relieves it.
STRESSED_HOURS = (10, 12)


@pytest.mark.parametrize("hour", STRESSED_HOURS)
def test_stressed_reactive_ranges_are_tight(hour: int) -> None:
    """Every inverter's q_max and |q_min| below its rating is tight (:func:`_not_tight`),
    also where the starting point (everyone at q = 0) is binding (issue 22: 56 ranges
    frozen at 0 there although injecting reactive power relieved the binding line)."""
    pf = power_flow("swiss161")
    case, env = _stressed(hour)
    tested, loose = _not_tight(pf, case, env)
    assert tested >= 100  # the 56 inverters held below their rating, on both sides
    assert not loose, loose


def _line_mixes(pf: RadialPowerFlow, case: dict, env: Envelopes) -> tuple[np.ndarray, ...]:
    """Per line, the 16 points where the prosumers below it and the others each sit at one
    of the box's four corners: ``(p, q_inverter)`` ``(n_points, n_prosumer)`` and the line of
    each point."""
    f = pf.feeder
    row = np.full(f.n_bus, -1)
    row[pf.non_slack] = np.arange(len(pf.non_slack))
    bus = case["prosumer_bus"]
    below = np.zeros((f.n_line, len(bus)), dtype=bool)  # prosumer below each line
    at = row[bus] >= 0
    below[:, at] = pf.path[row[bus[at]]].T > 0
    lines = np.flatnonzero(below.any(axis=1))
    p_vertex = np.array([env.export_kw, -env.import_kw])
    q_vertex = np.array([env.q_max_kvar, env.q_min_kvar])
    ps, qs, of_line = [], [], []
    for a, b, c, d in itertools.product(range(2), repeat=4):
        ps.append(np.where(below[lines], p_vertex[a], p_vertex[b]))
        qs.append(np.where(below[lines], q_vertex[c], q_vertex[d]))
        of_line.append(lines)
    return np.concatenate(ps), np.concatenate(qs), np.concatenate(of_line)


@pytest.mark.parametrize("hour", STRESSED_HOURS)
def test_stressed_reactive_box_is_secure(hour: int) -> None:
    """The four corners of the P-Q box by pandapower ``runpp``; random points of it and, per
    line, the 16 mixes of corners of the prosumers below it and of the others by our power
    flow: voltages in [0.95, 1.05] pu, every line within its loading bound, and no line's
    bound above its four corners' by the loading margin."""
    pf, ref = power_flow("swiss161"), reference("swiss161")
    case, env = _stressed(hour)
    p, q = _points(env, np.random.default_rng(hour))
    p_bus, q_bus = _bus_injections(case, p, q, pf.feeder.n_bus)
    for row in range(4):
        res = ref.solve(p_bus[row], q_bus[row])
        vm = _non_slack(pf, res.vm_pu)
        assert vm.min() >= VM_MIN - 1e-8 and vm.max() <= VM_MAX + 1e-8, row
        bound = line_loading_bound(pf, res.vm_pu, res.loading_percent, VM_MIN)
        assert bound.max() <= 1.0 + 1e-8, row
    p_mix, q_mix, line = _line_mixes(pf, case, env)
    p_bus, q_bus = _bus_injections(
        case, np.vstack([p, p_mix]), np.vstack([q, q_mix]), pf.feeder.n_bus
    )
    res = pf.solve(p_bus, q_bus)
    vm = _non_slack(pf, res.vm_pu)
    assert vm.max() <= VM_MAX + NOISE_PU and vm.min() >= VM_MIN - NOISE_PU
    bound = line_loading_bound(pf, res.vm_pu, res.loading_percent, VM_MIN)
    assert bound.max() <= 1.0
    own = bound[len(p) :][np.arange(len(line)), line]
    assert (own - bound[:4, line].max(axis=0)).max() < LOADING_MARGIN_PERCENT / 100.0


def test_no_inverter_no_range_and_equal_fraction_of_rating() -> None:
    pf = power_flow("ieee33")
    f = pf.feeder
    bus = np.array([17, 17, 30])
    p_other, q_other = -0.3 * f.load_p_kw, -0.3 * f.load_q_kvar
    maxima = np.array([50.0, 50.0, 50.0])
    args = (pf, bus, p_other, q_other, maxima, maxima)
    zero = compute_envelopes(*args)
    assert not zero.q_max_kvar.any() and not zero.q_min_kvar.any()
    assert set(zero.q_max_binding) == {"no reactive range asked"}
    env = compute_envelopes(*args, inverter_kva=np.array([3000.0, 1000.0, 0.0]))
    assert env.q_max_kvar[2] == env.q_min_kvar[2] == 0.0  # no inverter
    # the two at bus 17 get the same fraction of their rating, bound by the network
    assert env.q_max_kvar[0] / 3000.0 == pytest.approx(env.q_max_kvar[1] / 1000.0, rel=1e-9)
    assert 0 < env.q_max_kvar[1] < 1000.0 and env.q_max_binding[0].startswith("vm_max")
    # the active limits do not depend on the reactive ranges (they are searched first)
    np.testing.assert_array_equal(env.export_kw, zero.export_kw)
    np.testing.assert_array_equal(env.import_kw, zero.import_kw)
