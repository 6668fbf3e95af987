"""What a prosumer knows at an interval of the rest of its day, besides its messages: its
PV size, its own forecasts of its load and PV summarised over windows ahead, and its tariff
ahead. These are the inputs of the outlook features of the observation (format 3,
:data:`agents.policy.OUTLOOK_FEATURES`; formulas in ``docs/market.md``).

:func:`outlook` is the one owner of the windows and sums: one prosumer's
(:meth:`ProsumerOutlook.at`, a policy or the PettingZoo environment) or a batch's (the
vectorised environment, every interval of a calendar day's forecasts at once). The forecasts
are :class:`agents.forecast.OwnForecast`'s, the MPC's module: made only from the prosumer's
own past days and the intervals of today already seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic

import numpy as np

from agents.arrays import F
from agents.forecast import DEFAULT_FORECASTER, OwnForecast, SeenInterval

#: The forecaster of the outlook's forecasts (:data:`agents.forecast.FORECASTERS`).
OUTLOOK_FORECASTER = DEFAULT_FORECASTER
#: The forecast windows, in hours after the current interval: ``[start, end)``, so
#: ``(3, 9)`` is intervals ``t + 1 + 3h .. t + 9h`` (``h`` intervals an hour).
NEXT_1H_H = (0, 1)
NEXT_3H_H = (0, 3)
NEXT_4_9H_H = (3, 9)


@dataclass(frozen=True)
class Outlook(Generic[F]):
    """A prosumer's outlook at interval ``interval_of_day`` of its day (kW, kWh, EUR/kWh):
    numbers for one prosumer, arrays for a batch (broadcast against the observation's)."""

    pv_kwp: F
    #: Mean forecast power over the windows ahead (0 for a window past the day's end).
    pv_next_1h_kw: F
    pv_next_3h_kw: F
    pv_next_4_9h_kw: F
    load_next_1h_kw: F
    load_next_3h_kw: F
    load_next_4_9h_kw: F
    #: Forecast energy over the intervals after the current one to the day's end.
    pv_rest_kwh: F
    load_rest_kwh: F
    #: Retail tariff at the next interval (the current one's at the day's end), and its
    #: highest and lowest from the current interval to the day's end.
    retail_next_eur_per_kwh: F
    retail_max_ahead_eur_per_kwh: F
    retail_min_ahead_eur_per_kwh: F
    interval_of_day: int
    intervals_per_day: int


def _window_mean(ahead: np.ndarray, hours: tuple[int, int], per_hour: int) -> np.ndarray:
    """Mean of ``ahead`` (time first) over ``hours`` after now; 0 for an empty window."""
    part = ahead[hours[0] * per_hour : hours[1] * per_hour]
    return part.mean(axis=0) if len(part) else np.zeros(ahead.shape[1:])


def outlook(
    *,
    load_ahead_kw: np.ndarray,
    pv_ahead_kw: np.ndarray,
    retail_ahead_eur_per_kwh: np.ndarray,
    pv_kwp: F,
    duration_h: float,
    interval_of_day: int,
    intervals_per_day: int,
) -> Outlook:
    """The outlook at ``interval_of_day`` ``t``, time first in every input: the forecast load
    and PV of the intervals after ``t`` (``(T - 1 - t, ...)``) and the retail tariff from
    ``t`` to the day's end (``(T - t, ...)``)."""
    per_hour = round(1.0 / duration_h)
    retail = np.asarray(retail_ahead_eur_per_kwh, dtype=float)
    load, pv = np.asarray(load_ahead_kw, dtype=float), np.asarray(pv_ahead_kw, dtype=float)
    return Outlook(
        pv_kwp=pv_kwp,
        pv_next_1h_kw=_window_mean(pv, NEXT_1H_H, per_hour),
        pv_next_3h_kw=_window_mean(pv, NEXT_3H_H, per_hour),
        pv_next_4_9h_kw=_window_mean(pv, NEXT_4_9H_H, per_hour),
        load_next_1h_kw=_window_mean(load, NEXT_1H_H, per_hour),
        load_next_3h_kw=_window_mean(load, NEXT_3H_H, per_hour),
        load_next_4_9h_kw=_window_mean(load, NEXT_4_9H_H, per_hour),
        pv_rest_kwh=pv.sum(axis=0) * duration_h,
        load_rest_kwh=load.sum(axis=0) * duration_h,
        retail_next_eur_per_kwh=retail[min(1, len(retail) - 1)],
        retail_max_ahead_eur_per_kwh=retail.max(axis=0),
        retail_min_ahead_eur_per_kwh=retail.min(axis=0),
        interval_of_day=interval_of_day,
        intervals_per_day=intervals_per_day,
    )


@dataclass(frozen=True)
class ProsumerOutlook:
    """One prosumer's outlook over a run: its own forecasts, its retail tariff over the
    run's intervals (EUR/kWh) and its PV size; :meth:`at` gives the outlook at an
    observation."""

    forecast: OwnForecast
    retail_eur_per_kwh: Sequence[float] | np.ndarray
    pv_kwp: float
    duration_h: float

    def at(self, obs: SeenInterval) -> Outlook[float]:
        """The outlook at ``obs``'s interval (:meth:`OwnForecast.at`)."""
        load, pv = self.forecast.at(obs)
        steps = self.forecast.steps
        t = obs.interval % steps
        return outlook(
            load_ahead_kw=load[1:],
            pv_ahead_kw=pv[1:],
            retail_ahead_eur_per_kwh=np.asarray(self.retail_eur_per_kwh)[
                obs.interval : obs.interval + len(load)
            ],
            pv_kwp=self.pv_kwp,
            duration_h=self.duration_h,
            interval_of_day=t,
            intervals_per_day=steps,
        )
