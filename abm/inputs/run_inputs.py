"""Everything a run needs, built from its config: feeder, scenario, days, per-agent data.

Both backends build the same :class:`RunInputs` from the same :class:`abm.config.SimConfig`,
so an agent built in the Mesa model and one built in its own process are identical. Each
agent's random generator is spawned from the run seed by agent index
(``numpy.random.SeedSequence(seed).spawn``), so results do not depend on the backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from abm.config import SimConfig, market_has_p2p, market_has_var
from abm.errors import ConfigError
from abm.inputs.profiles import TEST_DAYS, TRAIN_DAYS, VALIDATION_DAYS
from abm.inputs.scenario import Scenario, load_scenario, scale_pv, scenario_for, scenario_profiles
from agents.battery import Battery
from agents.policy import Policy
from agents.prosumer import ProsumerAgent, ProsumerSeries
from dso.agent import DSOAgent, DsoForecast, PublicationRules
from dso.networks import Feeder, load_network


@dataclass(frozen=True)
class RunInputs:
    """The resolved inputs of one run."""

    config: SimConfig
    feeder: Feeder
    scenario: Scenario
    days: tuple[int, ...]
    duration_h: float
    series: dict[str, ProsumerSeries]
    forecast: DsoForecast

    @property
    def n_intervals(self) -> int:
        """Number of market intervals in the run."""
        return len(self.forecast.retail_eur_per_kwh)

    @property
    def prosumer_ids(self) -> tuple[str, ...]:
        """Prosumer ids in scenario order."""
        return self.scenario.prosumer_ids

    @property
    def network_name(self) -> str:
        """The feeder's name."""
        return self.feeder.name

    @property
    def hourly_retail_eur_per_kwh(self) -> tuple[float, ...]:
        """The retail price of each hour of the day (the ToU rule's tariff)."""
        return self.scenario.tariffs.retail_eur_per_kwh


def day_set_days(day_set: str) -> tuple[int, ...]:
    """The calendar days (0..364) of a day set (``test``, ``train`` or ``validation``, the
    part of the training days kept for validation)."""
    return {"test": TEST_DAYS, "validation": VALIDATION_DAYS}.get(str(day_set), TRAIN_DAYS)


def select_days(config: SimConfig) -> tuple[int, ...]:
    """The calendar days (0..364) of the run, from the chosen day set."""
    pool = day_set_days(config.day_set)
    last = config.first_day + config.days
    if last > len(pool):
        raise ConfigError(
            f"first_day={config.first_day} + days={config.days} exceeds the "
            f"{len(pool)} {config.day_set} days"
        )
    return tuple(int(d) for d in pool[config.first_day : last])


def resolve_scenario(config: SimConfig, feeder: Feeder) -> Scenario:
    """The run's scenario: ``config.scenario``'s file or the feeder's default, PV scaled by
    ``config.pv_scale``."""
    if config.scenario is not None:
        scenario = load_scenario(Path(config.scenario))
        if scenario.n_bus != feeder.n_bus:
            raise ConfigError(
                f"scenario {config.scenario} has n_bus={scenario.n_bus}, "
                f"network {feeder.name} has {feeder.n_bus}"
            )
    else:
        scenario = scenario_for(feeder)
    return scale_pv(scenario, config.pv_scale)


def build_run_inputs(
    config: SimConfig, *, feeder: Feeder | None = None, scenario: Scenario | None = None
) -> RunInputs:
    """Load the network and scenario and lay out every agent's data over the run.

    ``feeder`` and ``scenario`` may be passed to reuse already loaded ones (same config;
    the scenario as resolved, ``pv_scale`` applied).
    """
    feeder = feeder if feeder is not None else load_network(config.network)
    if scenario is None:
        scenario = resolve_scenario(config, feeder)
    days = select_days(config)
    day_data = [scenario_profiles(scenario, d) for d in days]
    steps = scenario.intervals_per_day

    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(d, name) for d in day_data], axis=0)

    load_kw, load_q, pv_kw = cat("load_p_kw"), cat("load_q_kvar"), cat("pv_p_kw")
    retail, feed_in = cat("retail_eur_per_kwh"), cat("feed_in_eur_per_kwh")
    hours = np.tile(np.arange(steps) * scenario.interval_min / 60.0, len(days))
    pros = scenario.prosumers
    series = {
        p.prosumer_id: ProsumerSeries(
            hour_of_day=hours,
            load_kw=load_kw[:, i],
            load_q_kvar=load_q[:, i],
            pv_kw=pv_kw[:, i],
            retail_eur_per_kwh=retail,
            feed_in_eur_per_kwh=feed_in,
        )
        for i, p in enumerate(pros)
    }
    forecast = DsoForecast(
        prosumer_ids=scenario.prosumer_ids,
        prosumer_bus=scenario.prosumer_buses,
        pv_kwp=np.array([p.pv_kwp for p in pros]),
        battery_kw=np.array([p.battery_kw for p in pros]),
        inverter_kva=np.array([p.inverter_kva for p in pros]),
        load_kw=load_kw,
        load_q_kvar=load_q,
        pv_kw=pv_kw,
        passive_p_kw=-cat("passive_p_kw"),
        passive_q_kvar=-cat("passive_q_kvar"),
        retail_eur_per_kwh=retail,
        feed_in_eur_per_kwh=feed_in,
        export_cap_kw=config.export_cap_kw_per_load_kw * np.array([p.load_peak_kw for p in pros]),
    )
    return RunInputs(config, feeder, scenario, days, scenario.interval_min / 60.0, series, forecast)


def agent_rngs(seed: int, n_agents: int) -> list[np.random.Generator]:
    """One independent generator per agent index, spawned from the run seed."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n_agents)]


def make_prosumer(world: RunInputs, index: int, policy: Policy) -> ProsumerAgent:
    """The prosumer agent number ``index`` of the scenario."""
    spec = world.scenario.prosumers[index]
    cfg = world.config
    return ProsumerAgent(
        agent_id=spec.prosumer_id,
        bus=spec.bus,
        battery=Battery(spec.battery_kwh, spec.battery_kw, spec.battery_efficiency),
        inverter_kva=spec.inverter_kva,
        series=world.series[spec.prosumer_id],
        policy=policy,
        protocol=cfg.protocol,
        p2p_market=market_has_p2p(cfg.market),
        var_market=market_has_var(cfg.market),
        duration_h=world.duration_h,
        initial_soc_kwh=spec.initial_soc_fraction * spec.battery_kwh,
        network_charge_eur_per_kwh=cfg.network_charge_eur_per_kwh,
    )


def publication_rules(config: SimConfig) -> PublicationRules:
    """The DSO's envelope and Var price rules of a run."""
    return PublicationRules(
        fairness=config.fairness,
        var_pricing=config.var_pricing,
        envelope_rule=config.envelopes,
        var_price_scale=config.var_price_scale,
    )


def make_dso(world: RunInputs) -> DSOAgent:
    """The DSO agent of the run."""
    return DSOAgent(
        world.feeder,
        world.forecast,
        var_market=market_has_var(world.config.market),
        rules=publication_rules(world.config),
        duration_h=world.duration_h,
    )
