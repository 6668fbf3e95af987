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

from abm.config import (
    PolicyName,
    SimConfig,
    checkpoint_dir,
    market_has_p2p,
    market_has_var,
    unknown_policy,
)
from abm.errors import ConfigError
from abm.profiles import DAYS, TEST_DAYS, TRAIN_DAYS
from abm.scenario import Scenario, load_scenario, scale_pv, scenario_for, scenario_profiles
from agents.actor import load_actor_policy
from agents.battery import Battery
from agents.forecast import PERFECT, make_forecaster, mpc_forecaster
from agents.policy import Policy, RandomPolicy, RulePolicy, TouPolicy
from agents.prosumer import ProsumerAgent, ProsumerSeries
from agents.settlement import storage_price_eur_per_kwh
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


def day_set_days(day_set: str) -> tuple[int, ...]:
    """The calendar days (0..364) of a day set (``test`` or ``train``)."""
    return TEST_DAYS if day_set == "test" else TRAIN_DAYS


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


def make_policy(name: str, rng: np.random.Generator, world: RunInputs, index: int) -> Policy:
    """The policy ``name`` (a baseline, or ``checkpoint:DIR``) of prosumer ``index``."""
    if name == PolicyName.RULE:
        return RulePolicy()
    if name == PolicyName.RANDOM:
        return RandomPolicy(rng)
    if name == PolicyName.TOU:
        return TouPolicy(world.scenario.tariffs.retail_eur_per_kwh)
    if name == PolicyName.OPTIMUM:
        from abm.optimum import replay_policy  # it needs RunInputs: imported when used

        return replay_policy(world, index)
    forecaster = mpc_forecaster(name)
    if forecaster is not None:
        return mpc_policy(world, index, forecaster)
    directory = checkpoint_dir(name)
    if not directory:
        raise unknown_policy(name)
    return load_actor_policy(
        directory,
        world.prosumer_ids[index],
        world.feeder.name,
        world.scenario.tariffs.retail_eur_per_kwh,
    )


_YEAR: list[tuple[Scenario, tuple[np.ndarray, np.ndarray]]] = []


def year_profiles(scenario: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """Every prosumer's load and PV (kW) over every calendar day, ``(365, T, N)`` each
    (computed once for the last scenario asked about)."""
    if not _YEAR or _YEAR[0][0] is not scenario:
        days = [scenario_profiles(scenario, d) for d in range(DAYS)]
        load = np.stack([d.load_p_kw for d in days])
        pv = np.stack([d.pv_p_kw for d in days])
        _YEAR[:] = [(scenario, (load, pv))]
    return _YEAR[0][1]


def mpc_policy(world: RunInputs, index: int, forecaster: str) -> Policy:
    """The forecast MPC of prosumer ``index`` (``forecaster``: a name of
    :data:`agents.forecast.FORECASTERS`, or ``perfect`` for ``mpc-perfect``), built from what
    the prosumer owns: its profiles (a forecaster reads only its past days), sizes, tariffs."""
    from agents.mpc import MpcPolicy  # scipy: imported when used

    spec = world.scenario.prosumers[index]
    series = world.series[spec.prosumer_id]
    load, pv = year_profiles(world.scenario)
    return MpcPolicy(
        forecaster=None if forecaster == PERFECT else make_forecaster(forecaster),
        load_kw_by_day=load[:, :, index],
        pv_kw_by_day=pv[:, :, index],
        run_days=world.days,
        retail_eur_per_kwh=series.retail_eur_per_kwh,
        feed_in_eur_per_kwh=series.feed_in_eur_per_kwh,
        efficiency=spec.battery_efficiency,
        storage_price_eur_per_kwh=float(
            storage_price_eur_per_kwh(spec.battery_efficiency, series.retail_eur_per_kwh)
        ),
        network_charge_eur_per_kwh=world.config.network_charge_eur_per_kwh,
        duration_h=world.duration_h,
        fallback=TouPolicy(world.scenario.tariffs.retail_eur_per_kwh),
    )


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
