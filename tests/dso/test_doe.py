"""Dynamic operating envelopes, validated by independent pandapower power flows.

Every case checks the envelope corners (all prosumers at their export limit at once, and
all at their import limit) with ``runpp``, and that the envelopes are not needlessly
tight: raising any one prosumer's limit by 1 % breaks a limit as the envelopes hold it
(lines by :func:`dso.doe.line_loading_bound`) or its physical maximum (with our power flow
for every prosumer, with ``runpp`` for a sample). The reactive ranges are checked at random
points of the whole active-reactive box, its corners included (``test_doe_reactive.py``).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from abm.bench.synthetic_cases import ProsumerCase, prosumer_case
from dso.doe import (
    LOADING_MARGIN_PERCENT,
    VOLTAGE_MARGIN_PU,
    Envelopes,
    compute_envelopes,
    line_loading_bound,
)
from dso.errors import InvalidInput
from dso.networks import Feeder, load_network
from dso.powerflow import RadialPowerFlow
from dso.reference import PandapowerReference

VM_MIN, VM_MAX, MAX_LOADING = 0.95, 1.05, 100.0
#: Per feeder: prosumer_case settings under which network limits bind on both sides, and
#: how many prosumers per side get the 1 % raise checked with runpp (None: all).
CASES = {
    "ieee33": ({"passive_share": 0.5, "pv_ratio": 2.0, "import_ratio": 1.0}, None),
    "swiss161": ({"passive_share": 0.5, "pv_ratio": 12.0, "import_ratio": 4.0}, 6),
}
SIDES = (("export", 1.0), ("import", -1.0))


def _envelopes(pf: RadialPowerFlow, case: ProsumerCase, fairness: str) -> Envelopes:
    return compute_envelopes(
        pf,
        case.prosumer_bus,
        case.p_other_kw,
        case.q_other_kvar,
        case.max_export_kw,
        case.max_import_kw,
        fairness=fairness,
        weights=case.pv_kwp,
    )


def _violated(feeder: Feeder, vm: np.ndarray, loading: np.ndarray) -> np.ndarray:
    """Per scenario: does any non-slack voltage or any line break the limits?"""
    vm = np.delete(np.atleast_2d(vm), feeder.slack_bus, axis=1)
    loading = np.atleast_2d(loading)
    return (
        (vm.min(axis=1) < VM_MIN) | (vm.max(axis=1) > VM_MAX) | (loading.max(axis=1) > MAX_LOADING)
    )


#: A raise that moves every active limit (within ACTIVE_PU of it at the corner) by less than
#: this is below the envelopes' safety margin: it need not break a limit (docs/grid.md).
NEGLIGIBLE_PU, ACTIVE_PU = 2e-10, 1e-9


def _slack(pf: RadialPowerFlow, vm: np.ndarray, loading: np.ndarray) -> np.ndarray:
    """Slack ``(B, n_limit)`` of every limit as the envelopes hold it: lines by their bound,
    all limits tightened by the envelopes' safety margins."""
    vm, loading = np.atleast_2d(vm), np.atleast_2d(loading)
    bound = line_loading_bound(pf, vm, loading, VM_MIN)
    vm = np.delete(vm, pf.feeder.slack_bus, axis=1) - VM_MIN
    band = VM_MAX - VM_MIN - VOLTAGE_MARGIN_PU
    max_bound = (MAX_LOADING - LOADING_MARGIN_PERCENT) / 100.0
    return np.concatenate([band - vm, vm - VOLTAGE_MARGIN_PU, max_bound - bound], axis=1)


def _raise_binds(
    pf: RadialPowerFlow, corner: object, raised: object, buses: np.ndarray
) -> np.ndarray:
    """Per raised scenario (the prosumer raised at ``buses[row]``): it breaks a limit as the
    envelopes hold it, or a limit of its substation branch is active at the corner and the
    raise moves every such limit by less than the safety margin."""
    f = pf.feeder
    at_corner = _slack(pf, corner.vm_pu, corner.loading_percent)[0]
    after = _slack(pf, raised.vm_pu, raised.loading_percent)
    ns = np.delete(np.arange(f.n_bus), f.slack_bus)
    limit_branch = np.concatenate([f.branch_of_bus[ns]] * 2 + [f.branch_of_bus[f.to_bus]])
    own = limit_branch[None, :] == f.branch_of_bus[np.atleast_1d(buses)][:, None]
    active = own & (at_corner < ACTIVE_PU)
    effect = np.where(active, at_corner - after, -np.inf).max(axis=1)
    return (after.min(axis=1) < 0) | (active.any(axis=1) & (effect < NEGLIGIBLE_PU))


def _corner(case: ProsumerCase, limits_kw: np.ndarray, sign: float) -> np.ndarray:
    p = case.p_other_kw.copy()
    np.add.at(p, case.prosumer_bus, sign * limits_kw)
    return p


def _raised(case: ProsumerCase, limits_kw: np.ndarray, sign: float, k: int) -> np.ndarray:
    raised = limits_kw.copy()
    raised[k] *= 1.01
    return _corner(case, raised, sign)


@pytest.mark.parametrize("fairness", ["equal", "proportional"])
def test_envelopes_are_safe_and_tight(
    name: str, pf: RadialPowerFlow, ref: PandapowerReference, fairness: str
) -> None:
    settings, n_runpp = CASES[name]
    f = pf.feeder
    case = prosumer_case(f, **settings)
    env = _envelopes(pf, case, fairness)
    assert env.export_feasible and env.import_feasible
    for side, sign in SIDES:
        limits = getattr(env, f"{side}_kw")
        maxima = getattr(case, f"max_{side}_kw")
        binding = getattr(env, f"{side}_binding")
        assert (limits >= 0).all() and (limits <= maxima).all()
        network_bound = [b.startswith(("vm_", "loading")) for b in binding]
        assert any(network_bound), f"{side}: the case must make a network limit bind"
        # the corner, by an independent AC power flow
        corner = ref.solve(_corner(case, limits, sign), case.q_other_kvar)
        assert not _violated(f, corner.vm_pu, corner.loading_percent)[0], side
        # every prosumer below its maximum: a 1 % raise breaks a limit (our power flow) ...
        room = np.flatnonzero(limits * 1.01 <= maxima)
        assert len(room), f"{side}: some prosumers must be held below their maximum"
        p = np.stack([_raised(case, limits, sign, k) for k in room])
        ours = pf.solve(p, np.broadcast_to(case.q_other_kvar, p.shape))
        at_corner = pf.solve(_corner(case, limits, sign), case.q_other_kvar)
        assert _raise_binds(pf, at_corner, ours, case.prosumer_bus[room]).all(), side
        # ... and so says runpp
        sample = room if n_runpp is None else np.random.default_rng(1).choice(room, n_runpp)
        for k in sample:
            raised = ref.solve(_raised(case, limits, sign, k), case.q_other_kvar)
            assert _raise_binds(pf, corner, raised, case.prosumer_bus[k])[0], (side, k)


def test_fairness_rules_share_the_binding_limit(pf: RadialPowerFlow) -> None:
    case = prosumer_case(pf.feeder, **CASES[pf.feeder.name][0])
    equal = np.ones(len(case.pv_kwp))
    for fairness, export_weights in (("equal", equal), ("proportional", case.pv_kwp)):
        env = _envelopes(pf, case, fairness)
        for side, weights in (("export", export_weights), ("import", equal)):
            limits = getattr(env, f"{side}_kw")
            binding = np.array(getattr(env, f"{side}_binding"))
            for why in set(binding) - {"physical maximum"}:
                share = limits[binding == why] / weights[binding == why]
                np.testing.assert_allclose(share, share[0], rtol=1e-9, err_msg=f"{side} {why}")


def test_each_substation_branch_has_its_own_level() -> None:
    f = load_network("swiss161")
    case = prosumer_case(f, **CASES["swiss161"][0])
    env = _envelopes(RadialPowerFlow(f), case, "equal")
    branch = f.branch_of_bus[case.prosumer_bus]
    binding = np.array(env.export_binding)
    levels = {}
    for b in np.unique(branch):
        bound = (branch == b) & (binding != "physical maximum")
        assert len(set(binding[bound])) == 1, "one binding limit per branch"
        levels[b] = env.export_kw[bound]
        np.testing.assert_allclose(levels[b], levels[b][0], rtol=1e-12)
    assert set(binding) == {"loading of line 165-95", "loading of line 95-93"}
    assert abs(levels[0][0] - levels[1][0]) > 1.0  # independent levels, not one global level


def test_infeasible_at_zero_returns_zero_and_says_so() -> None:
    f = load_network("ieee33")
    pf = RadialPowerFlow(f)
    bus = np.array([5, 17, 30])
    p, q = f.base_injection()  # full base load stays: 0.913 pu at bus 17 already
    env = compute_envelopes(pf, bus, p, q, np.full(3, 100.0), np.full(3, 100.0))
    assert not env.export_feasible and not env.import_feasible
    np.testing.assert_array_equal(env.export_kw, 0.0)
    np.testing.assert_array_equal(env.import_kw, 0.0)
    assert env.import_binding[0] == "infeasible at zero: vm_min at bus 17"


def test_maxima_weights_shared_buses_and_slack() -> None:
    f = load_network("ieee33")
    pf = RadialPowerFlow(f)
    case = prosumer_case(f, passive_share=0.5)
    bus = np.concatenate([case.prosumer_bus, [17, f.slack_bus]])  # two at bus 17; one at slack
    n = len(bus)
    max_export = np.full(n, 500.0)
    max_export[3] = 5.0  # a small PV: capped by its maximum
    weights = np.full(n, 1.0)
    weights[4] = 0.0  # no PV: nothing to export under the proportional rule
    p_other, q_other = case.p_other_kw, case.q_other_kvar
    env = compute_envelopes(
        pf, bus, p_other, q_other, max_export, np.full(n, 50.0), "proportional", weights
    )
    assert env.export_kw[3] == 5.0 and env.export_binding[3] == "physical maximum"
    assert env.export_kw[4] == 0.0 and env.export_binding[4] == "zero fairness weight"
    assert env.import_kw[4] == env.import_kw[5] > 0  # imports are shared equally
    assert env.export_kw[-1] == 500.0  # the slack bus has no network limit
    i17 = np.flatnonzero(bus == 17)
    assert env.export_kw[i17[0]] == env.export_kw[i17[1]] > 0
    p = p_other.copy()
    np.add.at(p, bus, env.export_kw)
    result = pf.solve(p, q_other)
    assert not _violated(f, result.vm_pu, result.loading_percent)[0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"prosumer_bus": np.array([1.5])}, "prosumer_bus must be a 1-D integer array"),
        ({"prosumer_bus": np.array([40])}, r"prosumer_bus must be in 0\.\.32"),
        ({"p_other_kw": np.zeros(5)}, r"p_other_kw must have shape \(33,\)"),
        ({"max_export_kw": np.array([-1.0])}, "max_export_kw must be >= 0"),
        ({"max_import_kw": np.array([np.inf])}, "max_import_kw must be finite"),
        ({"fairness": "maxtotal"}, "fairness must be one of equal, proportional"),
        ({"fairness": "proportional"}, "needs weights"),
        ({"vm_min_pu": 1.1}, "vm_min_pu < vm_max_pu"),
        ({"max_loading_percent": 0.0}, "max_loading_percent must be > 0"),
    ],
)
def test_bad_inputs_are_refused(change: dict, message: str) -> None:
    f = load_network("ieee33")
    args = {
        "prosumer_bus": np.array([5]),
        "p_other_kw": np.zeros(33),
        "q_other_kvar": np.zeros(33),
        "max_export_kw": np.array([10.0]),
        "max_import_kw": np.array([10.0]),
    }
    args.update(change)
    with pytest.raises(InvalidInput, match=message):
        compute_envelopes(RadialPowerFlow(f), **args)


#: Envelopes below this are exempt from the 1 % tightness check: their raise moves the
#: binding limit by less than the safety margin (docs/grid.md).
TINY_ENVELOPE_KW = 1.0
_PF = {name: RadialPowerFlow(load_network(name)) for name in ("ieee33", "swiss161")}


@pytest.mark.parametrize(
    ("network", "scale"), [("ieee33", 1.0), ("ieee33", 5.0), ("swiss161", 8.0)]
)
@given(seed=st.integers(0, 2**32 - 1))
@settings(max_examples=25)
def test_random_cases_are_safe_and_tight(network: str, scale: float, seed: int) -> None:
    pf = _PF[network]
    f = pf.feeder
    rng = np.random.default_rng(seed)
    n_p = int(rng.integers(1, 60))
    bus = rng.choice(np.delete(np.arange(f.n_bus), f.slack_bus), n_p)
    p_other = -f.load_p_kw * rng.uniform(0, 1) * rng.uniform(0.5, 1.5, f.n_bus)
    q_other = -f.load_q_kvar * rng.uniform(0, 1)
    size = f.load_p_kw.sum() / n_p * scale
    maxima = {side: rng.uniform(0, 3, n_p) * size * rng.uniform(0.1, 1) for side, _ in SIDES}
    fairness = str(rng.choice(["equal", "proportional"]))
    weights = rng.uniform(0, 2, n_p)
    env = compute_envelopes(
        pf, bus, p_other, q_other, maxima["export"], maxima["import"], fairness, weights
    )
    for side, sign in SIDES:
        limits = getattr(env, f"{side}_kw")
        if not getattr(env, f"{side}_feasible"):  # violated at zero: those branches get 0
            at_zero = np.char.startswith(getattr(env, f"{side}_binding"), "infeasible at zero")
            assert at_zero.any() and (limits[at_zero] == 0).all()
            continue
        corner = p_other.copy()
        np.add.at(corner, bus, sign * limits)
        at_corner = pf.solve(corner, q_other)
        assert not _violated(f, at_corner.vm_pu, at_corner.loading_percent)[0], side
        room = np.flatnonzero((limits * 1.01 <= maxima[side]) & (limits >= TINY_ENVELOPE_KW))
        if len(room):
            raised = np.repeat(corner[None], len(room), axis=0)
            raised[np.arange(len(room)), bus[room]] += sign * 0.01 * limits[room]
            result = pf.solve(raised, np.broadcast_to(q_other, raised.shape))
            assert _raise_binds(pf, at_corner, result, bus[room]).all(), side
