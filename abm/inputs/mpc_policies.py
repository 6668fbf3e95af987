"""The forecast MPC's policies for a run (registered in :mod:`abm.config` as ``mpc``,
``mpc:FORECASTER`` and ``mpc-perfect``; docs/mpc.md).

Each prosumer's :class:`agents.mpc.MpcPolicy` is built from what the prosumer owns: its own
profiles over the year (a forecaster reads only the days before the current one), its sizes
and the tariffs. The year's profiles are computed once per run, by the maker.
"""

from __future__ import annotations

import numpy as np

from abm.inputs.profiles import DAYS
from abm.inputs.run_inputs import RunInputs
from abm.inputs.scenario import Scenario, scenario_profiles
from agents.forecast import PERFECT, make_forecaster
from agents.policy import Policy, TouPolicy
from agents.policy_registry import PolicyMaker
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
