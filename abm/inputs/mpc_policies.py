"""The policies of a run that read a prosumer's own forecasts: the forecast MPC (registered
in :mod:`abm.config` as ``mpc``, ``mpc:FORECASTER`` and ``mpc-perfect``; docs/mpc.md) and the
trained actors (``checkpoint:DIR``), whose format-3 observation holds the prosumer's outlook.

Each prosumer's policy is built from what the prosumer owns: its own profiles over the year
(a forecaster reads only the days before the current one), its sizes and the tariffs. The
year's profiles are computed once per run, by the maker (a checkpoint's: only when an actor
reads the outlook).
"""

from __future__ import annotations

import numpy as np

from abm.inputs.profiles import DAYS
from abm.inputs.run_inputs import RunInputs
from abm.inputs.scenario import Scenario, scenario_profiles
from agents.forecast import PERFECT, OwnForecast, make_forecaster
from agents.outlook import OUTLOOK_FORECASTER, ProsumerOutlook
from agents.policy import Policy, TouPolicy
from agents.policy_registry import PolicyMaker, load_actor_policy
from agents.settlement import storage_price_eur_per_kwh


def year_profiles(scenario: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """Every prosumer's load and PV (kW) over every calendar day, ``(365, T, N)`` each."""
    days = [scenario_profiles(scenario, d) for d in range(DAYS)]
    return np.stack([d.load_p_kw for d in days]), np.stack([d.pv_p_kw for d in days])


def mpc_policies(world: RunInputs, forecaster: str | None) -> PolicyMaker:
    """The maker of each prosumer's forecast MPC in ``world`` (``forecaster``: a name of
    :data:`agents.forecast.FORECASTERS`, or :data:`agents.forecast.PERFECT`)."""
    from agents.mpc import MpcPolicy  # scipy: imported when used

    name = str(forecaster)
    forecast = None if name == PERFECT else make_forecaster(name)  # an unknown name: one line
    load, pv = year_profiles(world.scenario)

    def make(index: int, _rng: np.random.Generator) -> Policy:
        spec = world.scenario.prosumers[index]
        series = world.series[spec.prosumer_id]
        return MpcPolicy(
            forecaster=forecast,
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

    return make


def mpc_perfect_policies(world: RunInputs, _arg: str | None) -> PolicyMaker:
    """The maker of each prosumer's MPC fed its actual profiles (``mpc-perfect``)."""
    return mpc_policies(world, PERFECT)


def prosumer_outlooks(
    world: RunInputs, profiles: tuple[np.ndarray, np.ndarray] | None = None
) -> list[ProsumerOutlook]:
    """Every prosumer's outlook over ``world``'s run (its own forecasts by the default
    forecaster, :data:`agents.outlook.OUTLOOK_FORECASTER`); ``profiles``: the scenario's
    :func:`year_profiles`, computed here if not given."""
    load, pv = profiles if profiles is not None else year_profiles(world.scenario)
    forecaster = make_forecaster(OUTLOOK_FORECASTER)
    return [
        ProsumerOutlook(
            forecast=OwnForecast(
                forecaster=forecaster,
                load_kw_by_day=load[:, :, i],
                pv_kw_by_day=pv[:, :, i],
                run_days=world.days,
            ),
            retail_eur_per_kwh=world.series[spec.prosumer_id].retail_eur_per_kwh,
            pv_kwp=spec.pv_kwp,
            duration_h=world.duration_h,
        )
        for i, spec in enumerate(world.scenario.prosumers)
    ]


def checkpoint_policies(world: RunInputs, directory: str | None) -> PolicyMaker:
    """The maker of each prosumer's trained actor in ``directory`` (``checkpoint:DIR``,
    :func:`agents.policy_registry.load_actor_policy`); the outlooks are built on the first
    actor that reads them."""
    outlooks: list[ProsumerOutlook] = []

    def outlook(index: int) -> ProsumerOutlook:
        if not outlooks:
            outlooks.extend(prosumer_outlooks(world))
        return outlooks[index]

    return lambda index, _rng: load_actor_policy(
        str(directory),
        world.prosumer_ids[index],
        world.network_name,
        world.hourly_retail_eur_per_kwh,
        lambda: outlook(index),
    )
