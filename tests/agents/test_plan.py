"""Battery, policies and the action-to-plan projection."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.battery import Battery
from agents.orders import SIDE_BUY, SIDE_NONE, SIDE_SELL
from agents.plan import plan_interval
from agents.policy import (
    BASE_OBS_DIM,
    OBS_DIM,
    Action,
    ExternalPolicy,
    InvalidAction,
    Observation,
    RandomPolicy,
    RulePolicy,
)

BATTERY = Battery(capacity_kwh=20.0, power_kw=10.0, efficiency=0.95)


def make_obs(**overrides) -> Observation:
    base = dict(
        hour_of_day=12.0,
        load_kw=30.0,
        load_q_kvar=10.0,
        pv_kw=80.0,
        soc_kwh=10.0,
        battery_kwh=20.0,
        battery_kw=10.0,
        inverter_kva=100.0,
        export_kw=40.0,
        import_kw=50.0,
        q_min_kvar=-100.0,
        q_max_kvar=100.0,
        var_price_eur_per_kvarh=0.01,
        retail_eur_per_kwh=0.3,
        feed_in_eur_per_kwh=0.05,
        last_price_eur_per_kwh=0.17,
        last_vm_pu=1.0,
        p2p_market=True,
        var_market=True,
    )
    base.update(overrides)
    return Observation(**base)


def test_battery_limits_and_efficiency():
    # 1 h: discharge limited by rating (15 kWh stored), then by energy (5 kWh).
    assert BATTERY.feasible_p_kw(50.0, 15.0, 1.0) == 10.0
    assert BATTERY.feasible_p_kw(50.0, 5.0, 1.0) == pytest.approx(5.0 * 0.95)
    assert BATTERY.feasible_p_kw(-50.0, 19.0, 1.0) == pytest.approx(-1.0 / 0.95)
    assert BATTERY.next_soc_kwh(10.0, -10.0, 1.0) == pytest.approx(19.5)
    assert BATTERY.next_soc_kwh(10.0, 9.5, 1.0) == pytest.approx(0.0)
    assert Battery(0.0, 0.0, 1.0).feasible_p_kw(5.0, 0.0, 1.0) == 0.0


finite = st.floats(-1.0, 1.0)


@given(
    action=st.tuples(finite, finite, finite, finite),
    load=st.floats(0.0, 200.0),
    pv=st.floats(0.0, 150.0),
    soc=st.floats(0.0, 20.0),
    export_kw=st.floats(0.0, 100.0),
    import_kw=st.floats(0.0, 100.0),
    q_min_kvar=st.floats(-150.0, 0.0),
    q_max_kvar=st.floats(0.0, 150.0),
    var_market=st.booleans(),
)
def test_plan_is_feasible(
    action, load, pv, soc, export_kw, import_kw, q_min_kvar, q_max_kvar, var_market
):
    obs = make_obs(
        load_kw=load,
        load_q_kvar=0.3 * load,
        pv_kw=pv,
        soc_kwh=soc,
        export_kw=export_kw,
        import_kw=import_kw,
        q_min_kvar=q_min_kvar,
        q_max_kvar=q_max_kvar,
        var_market=var_market,
    )
    plan = plan_interval(Action(*action), obs, BATTERY, duration_h=1.0)
    tol = 1e-9
    # Envelope: export always; import unless the battery cannot cover it (then reported).
    assert plan.p_kw <= export_kw + tol
    assert plan.p_kw + plan.import_violation_kw >= -import_kw - tol
    assert math.isclose(plan.p_kw, plan.pv_used_kw - load + plan.battery_p_kw, abs_tol=1e-9)
    # Inverter capability and physical bounds.
    p_inv = plan.pv_used_kw + plan.battery_p_kw
    assert p_inv**2 + plan.q_inverter_kvar**2 <= obs.inverter_kva**2 * (1 + 1e-9)
    assert q_min_kvar <= plan.q_inverter_kvar <= q_max_kvar  # the reactive envelope
    assert math.isclose(plan.q_kvar, plan.q_inverter_kvar - 0.3 * load, abs_tol=1e-9)
    assert -tol <= plan.pv_used_kw <= pv + tol
    assert abs(plan.battery_p_kw) <= BATTERY.power_kw + tol
    assert 0.0 <= plan.next_soc_kwh <= BATTERY.capacity_kwh
    if not var_market:
        assert plan.q_inverter_kvar == 0.0
    # The order never exceeds the net position nor the envelope.
    if plan.order_side == SIDE_SELL:
        assert plan.order_kwh <= min(plan.p_kw, export_kw) + tol
    elif plan.order_side == SIDE_BUY:
        assert plan.order_kwh <= min(-plan.p_kw, import_kw) + tol
    assert 0.05 - tol <= plan.limit_price_eur_per_kwh <= 0.3 + tol


def test_reactive_envelope_clips_q_and_the_rule_policy():
    # p_inverter = 80 kW of PV at 100 kVA: 60 kvar of capability left, the envelope 25 kvar.
    obs = make_obs(pv_kw=80.0, load_kw=0.0, export_kw=100.0, q_min_kvar=-5.0, q_max_kvar=25.0)

    def q_of(q: float) -> float:
        return plan_interval(Action(0.0, 0.0, 0.0, q), obs, BATTERY, 1.0).q_inverter_kvar

    assert q_of(1.0) == 25.0 and q_of(-1.0) == -5.0 and q_of(0.1) == pytest.approx(10.0)
    wide = make_obs(pv_kw=80.0, load_kw=0.0, export_kw=100.0, q_max_kvar=90.0)
    assert plan_interval(Action(0, 0, 0, 1.0), wide, BATTERY, 1.0).q_inverter_kvar == (
        pytest.approx(60.0)
    )  # the capability circle binds first
    # the rule policy compensates 40 kvar of own demand; the envelope allows 25 kvar
    rule = Action.from_vector(RulePolicy().act(make_obs(load_q_kvar=40.0)))
    assert plan_interval(rule, obs, BATTERY, 1.0).q_inverter_kvar == 25.0


def test_export_limit_curtails_pv():
    obs = make_obs(load_kw=10.0, pv_kw=80.0, export_kw=20.0, soc_kwh=20.0)
    plan = plan_interval(Action(0.0, 1.0, -1.0, 0.0), obs, BATTERY, 1.0)
    assert plan.p_kw == pytest.approx(20.0)
    assert plan.pv_used_kw == pytest.approx(30.0)
    assert plan.order_side == SIDE_SELL and plan.order_kwh == pytest.approx(20.0)


def test_import_limit_uses_battery_then_reports_violation():
    obs = make_obs(load_kw=70.0, pv_kw=0.0, import_kw=65.0, soc_kwh=20.0)
    plan = plan_interval(Action(0.0, 1.0, 1.0, 0.0), obs, BATTERY, 1.0)
    assert plan.battery_p_kw == pytest.approx(5.0)
    assert plan.import_violation_kw == 0.0
    obs = make_obs(load_kw=90.0, pv_kw=0.0, import_kw=65.0, soc_kwh=20.0)
    plan = plan_interval(Action(0.0, 1.0, 1.0, 0.0), obs, BATTERY, 1.0)
    assert plan.battery_p_kw == pytest.approx(10.0)
    assert plan.import_violation_kw == pytest.approx(15.0)


def test_no_p2p_market_means_no_order():
    obs = make_obs(p2p_market=False)
    plan = plan_interval(Action(0.0, 1.0, 0.0, 0.0), obs, BATTERY, 1.0)
    assert plan.order_side == SIDE_NONE and plan.order_kwh == 0.0


def test_action_validation_names_the_component():
    with pytest.raises(InvalidAction, match=r"action\[2\] \(price\) = nan"):
        Action.from_vector([0.0, 0.0, float("nan"), 0.0])
    with pytest.raises(InvalidAction, match="3 components"):
        Action.from_vector([0.0, 0.0, 0.0])
    assert Action.from_vector([5.0, -5.0, 0.5, 0.0]) == Action(1.0, -1.0, 0.5, 0.0)


def test_rule_policy_truthful_prices_and_local_compensation():
    seller_obs, buyer_obs = make_obs(pv_kw=80.0, load_kw=10.0), make_obs(pv_kw=0.0, load_kw=60.0)
    seller, buyer = RulePolicy().act(seller_obs), RulePolicy().act(buyer_obs)
    # The same truthful component on either side: after projection ask feed-in, bid retail.
    sell = plan_interval(Action.from_vector(seller), seller_obs, BATTERY, 1.0)
    buy = plan_interval(Action.from_vector(buyer), buyer_obs, BATTERY, 1.0)
    assert (sell.order_side, sell.limit_price_eur_per_kwh) == (SIDE_SELL, 0.05)
    assert (buy.order_side, buy.limit_price_eur_per_kwh) == (SIDE_BUY, pytest.approx(0.3))
    assert seller[3] == pytest.approx(0.1)  # Var price > 0: own demand 10 kvar of 100 kVA
    high_v = RulePolicy().act(make_obs(last_vm_pu=1.045))
    assert high_v[3] == pytest.approx(0.1)  # no droop: the envelopes keep voltages in range
    harmful = RulePolicy().act(make_obs(var_price_eur_per_kvarh=-0.01))
    no_market = RulePolicy().act(make_obs(var_market=False))
    assert harmful[3] == 0.0 and no_market[3] == 0.0  # injection would raise the loss / no Var


def test_random_policy_is_seeded_and_external_policy_is_one_shot():
    obs = make_obs()
    a = RandomPolicy(np.random.default_rng(7)).act(obs)
    b = RandomPolicy(np.random.default_rng(7)).act(obs)
    assert np.array_equal(a, b) and np.all(np.abs(a) <= 1)
    ext = ExternalPolicy()
    ext.set(np.zeros(4))
    assert np.array_equal(ext.act(obs), np.zeros(4))
    with pytest.raises(InvalidAction):
        ext.act(obs)


def test_observation_vector_shape():
    vec = make_obs().to_vector()  # the record's features alone (format 1 and 2)
    assert vec.shape == (BASE_OBS_DIM,) == (17,) and np.all(np.isfinite(vec))
    assert OBS_DIM == 36
