"""The DSO's publication under each envelope rule and Var price scale, the config fields
that choose them, and the PV scale of a scenario."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from abm.config import SimConfig
from abm.errors import ConfigError
from abm.inputs.run_inputs import build_run_inputs, publication_rules
from abm.inputs.scenario import pv_penetration, scale_pv, scenario_for
from dso.agent import publication
from dso.errors import InvalidInput
from dso.networks import load_network
from dso.powerflow import RadialPowerFlow

#: Noon of the sunniest held-out day: PV exports push the envelopes.
NOON, SUNNY = 12, 28


@pytest.fixture(scope="module")
def world():
    return build_run_inputs(SimConfig(first_day=SUNNY, export_cap_kw_per_load_kw=0.5))


def _publish(world, **fields):
    config = dataclasses.replace(world.config, **fields)
    pf = RadialPowerFlow(world.feeder)
    return publication(pf, world.forecast, NOON, var_market=True, rules=publication_rules(config))


def test_static_rule_caps_export_at_its_share_of_load_peak(world) -> None:
    fc = world.forecast
    env, _ = _publish(world, envelopes="static")
    peak = np.array([p.load_peak_kw for p in world.scenario.prosumers])
    physical = np.maximum(0.0, fc.pv_kw[NOON] + fc.battery_kw - fc.load_kw[NOON])
    assert np.allclose(env.export_kw, np.minimum(physical, 0.5 * peak))
    assert np.allclose(env.import_kw, fc.load_kw[NOON] + fc.battery_kw)
    assert (env.export_kw < physical - 1e-9).any()  # the cap binds somewhere at noon
    none, _ = _publish(world, envelopes="none")
    assert np.allclose(none.export_kw, physical)
    dynamic, _ = _publish(world, envelopes="dynamic")
    assert (dynamic.export_kw <= physical + 1e-9).all() and dynamic.n_power_flows > 0


def test_var_price_scales_linearly(world) -> None:
    _, one = _publish(world)
    _, two = _publish(world, var_price_scale=2.0)
    _, zero = _publish(world, var_price_scale=0.0)
    assert np.abs(one).max() > 0
    assert np.allclose(two, 2.0 * one) and not zero.any()


@pytest.mark.parametrize(
    ("field", "value"),
    [("var_price_scale", -1.0), ("pv_scale", float("nan")), ("export_cap_kw_per_load_kw", True)],
)
def test_config_refuses_bad_values(field: str, value: float) -> None:
    with pytest.raises(ConfigError, match=f"^{field}="):
        SimConfig(**{field: value})


def test_config_refuses_unknown_rule() -> None:
    with pytest.raises(ConfigError, match="envelopes='fixed' is not one of dynamic, static, none"):
        SimConfig(envelopes="fixed")  # type: ignore[arg-type]


def test_publication_rules_refuse_bad_scale() -> None:
    with pytest.raises(InvalidInput, match="var_price_scale"):
        publication_rules(SimConfig()).__class__(var_price_scale=-2.0)


def test_pv_scale() -> None:
    base = scenario_for(load_network("ieee33"))
    double = scale_pv(base, 2.0)
    assert pv_penetration(double) == pytest.approx(2.0 * pv_penetration(base))
    for old, new in zip(base.prosumers, double.prosumers, strict=True):
        assert new.pv_kwp == pytest.approx(2.0 * old.pv_kwp)
        expected = max(2.0 * old.inverter_kva, old.battery_kw) if old.pv_kwp else old.inverter_kva
        assert new.inverter_kva == pytest.approx(expected)
    none = scale_pv(base, 0.0)
    assert pv_penetration(none) == 0.0
    assert all(p.inverter_kva == p.battery_kw for p, o in zip(none.prosumers, base.prosumers,
               strict=True) if o.pv_kwp)  # fmt: skip
    with pytest.raises(ConfigError, match="pv_scale"):
        scale_pv(base, -1.0)
    world = build_run_inputs(SimConfig(pv_scale=2.0))
    assert world.forecast.pv_kwp.sum() == pytest.approx(2.0 * sum(p.pv_kwp for p in base.prosumers))
