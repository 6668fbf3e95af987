"""Forecasts a prosumer makes on its own: its load and PV over the rest of the day.

A forecaster sees only what the prosumer has by then: its own past days (``past``, the days
before today, oldest first) and the intervals of today already seen (``today[:seen]``; the
observation of an interval carries that interval's load and PV, so at interval ``t`` of the
day ``seen = t + 1``). It returns the whole day, the seen intervals as they were and the rest
forecast, never reading ``today[seen:]``: :func:`check_inputs` slices it off first.

Every forecaster is batched over the last axis (``N`` prosumers, or one), deterministic
(no random draw) and numpy-only; :func:`forecast_day` gives the forecasts made at every
interval of a day at once (for learners' observations); :class:`OwnForecast` is one
prosumer's forecasting state over a run (its own profiles, the run's days, its forecaster),
what a policy that reads forecasts holds. The forecasters (``docs/mpc.md``):

- ``persistence``: the same interval yesterday (the last seen value without a past day);
- ``seasonal``: the mean of the last :data:`SEASONAL_DAYS` days, scaled by today's realised
  energy so far over the profile's (clipped to :data:`SCALE_RANGE`);
- ``regression``: a least-squares blend of yesterday and the seasonal mean (with an
  intercept), fitted per prosumer on its last :data:`REGRESSION_DAYS` days over the intervals
  whose seasonal mean is positive (PV: daylight; 0 elsewhere), then scaled by today's realised
  energy as ``seasonal``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from agents.errors import AgentError


class SeenInterval(Protocol):
    """What a forecast reads of an observation (:class:`agents.policy.Observation` is one):
    the run interval and its own load and PV."""

    @property
    def interval(self) -> int: ...

    @property
    def load_kw(self) -> float: ...

    @property
    def pv_kw(self) -> float: ...


#: Days averaged into the seasonal profile.
SEASONAL_DAYS = 14
#: Days the regression is fitted on (each with its own yesterday and seasonal mean).
REGRESSION_DAYS = 28
#: Ridge penalty of the regression's normal equations (kept
#: solvable when a prosumer has nothing to fit, e.g. no PV).
RIDGE = 1e-6
#: Today's scale factor (realised over expected energy so far) is clipped into this range.
SCALE_RANGE = (0.25, 4.0)
#: Expected energy so far (kW summed over intervals) below which today's scale stays 1.
MIN_SCALE_BASIS = 1e-6
#: Days before today a forecaster may read at most (the MPC keeps no more).
LOOKBACK_DAYS = REGRESSION_DAYS + SEASONAL_DAYS


class ForecastError(AgentError):
    """A forecaster's name or inputs are invalid; the message names the value."""


Forecaster = Callable[[np.ndarray, np.ndarray, int], np.ndarray]


def check_inputs(past: np.ndarray, today: np.ndarray, seen: int) -> tuple[np.ndarray, np.ndarray]:
    """``past`` as ``(D, T, N)`` floats and the seen part of ``today`` (``(seen, N)``);
    :class:`ForecastError` for shapes that do not fit or a ``seen`` outside ``[0, T]``."""
    today = np.asarray(today, dtype=float)
    if today.ndim != 2:
        raise ForecastError(f"today has shape {today.shape}, expected (T, N)")
    past = np.asarray(past, dtype=float).reshape(-1, *today.shape)
    if not 0 <= seen <= today.shape[0]:
        raise ForecastError(f"seen = {seen}: must be in [0, {today.shape[0]}]")
    return past, today[:seen]


def _fill(realised: np.ndarray, forecast: np.ndarray) -> np.ndarray:
    """The day: the realised intervals, then the forecast of the rest (>= 0)."""
    out = np.maximum(forecast, 0.0)
    out[: len(realised)] = realised
    return out


def _fallback(realised: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Without a past day: the last seen value held (0 before any)."""
    last = realised[-1] if len(realised) else np.zeros(shape[1:])
    return np.broadcast_to(last, shape).copy()


def persistence(past: np.ndarray, today: np.ndarray, seen: int) -> np.ndarray:
    """The same interval yesterday."""
    past, realised = check_inputs(past, today, seen)
    base = past[-1] if len(past) else _fallback(realised, np.shape(today))
    return _fill(realised, base)


def _scaled(profile: np.ndarray, realised: np.ndarray) -> np.ndarray:
    """``profile`` scaled by today's realised energy so far over the profile's (per column)."""
    expected = profile[: len(realised)].sum(axis=0)
    ratio = realised.sum(axis=0) / np.maximum(expected, MIN_SCALE_BASIS)
    scale = np.where(expected > MIN_SCALE_BASIS, np.clip(ratio, *SCALE_RANGE), 1.0)
    return profile * scale


def seasonal(past: np.ndarray, today: np.ndarray, seen: int) -> np.ndarray:
    """The mean of the last :data:`SEASONAL_DAYS` days, scaled by today so far."""
    past, realised = check_inputs(past, today, seen)
    if not len(past):
        return _fill(realised, _fallback(realised, np.shape(today)))
    return _fill(realised, _scaled(past[-SEASONAL_DAYS:].mean(axis=0), realised))


def regression(past: np.ndarray, today: np.ndarray, seen: int) -> np.ndarray:
    """``a + b yesterday + c seasonal`` per prosumer (least squares over its last
    :data:`REGRESSION_DAYS` days, where the seasonal mean is positive), scaled by today so far;
    ``seasonal`` with too few days."""
    past, realised = check_inputs(past, today, seen)
    if len(past) < 3:
        return seasonal(past, today, seen)
    targets = range(max(1, len(past) - REGRESSION_DAYS), len(past))
    rows = [(past[d - 1], past[max(0, d - SEASONAL_DAYS) : d].mean(axis=0)) for d in targets]
    yesterday = np.stack([y for y, _ in rows])  # (S, T, N)
    mean = np.stack([m for _, m in rows])
    y = past[list(targets)]
    n = np.shape(today)[1]
    active = (mean > 0)[..., None]  # intervals with something to forecast (PV: daylight)
    x = np.stack([np.ones_like(yesterday), yesterday, mean], axis=-1) * active  # (S, T, N, 3)
    x = x.transpose(2, 0, 1, 3).reshape(n, -1, 3)
    gram = np.einsum("nsi,nsj->nij", x, x) + RIDGE * np.eye(3)
    rhs = np.einsum("nsi,ns->ni", x, y.transpose(2, 0, 1).reshape(n, -1))
    coef = np.linalg.solve(gram, rhs[..., None])[..., 0]  # (N, 3)
    season = past[-SEASONAL_DAYS:].mean(axis=0)
    profile = coef[:, 0] + coef[:, 1] * past[-1] + coef[:, 2] * season
    profile = np.where(season > 0, np.maximum(profile, 0.0), 0.0)
    return _fill(realised, _scaled(profile, realised))


#: The forecasters by name.
FORECASTERS: dict[str, Forecaster] = {
    "persistence": persistence,
    "seasonal": seasonal,
    "regression": regression,
}
DEFAULT_FORECASTER = "seasonal"


def make_forecaster(name: str) -> Forecaster:
    """The forecaster ``name``; :class:`ForecastError` naming the known ones otherwise."""
    try:
        return FORECASTERS[name]
    except (KeyError, TypeError):
        raise ForecastError(
            f"forecaster = {name!r}: unknown; expected one of {', '.join(FORECASTERS)}"
        ) from None


def forecast_day(forecaster: Forecaster, past: np.ndarray, today: np.ndarray) -> np.ndarray:
    """Every forecast of one day at once, ``(T, T, N)``: ``[t]`` is the day as forecast at
    interval ``t`` (its own and earlier intervals seen)."""
    today = np.asarray(today, dtype=float)
    return np.stack([forecaster(past, today, t + 1) for t in range(today.shape[0])])


#: The forecaster name of ``mpc-perfect`` (the actual profiles; policies registered in
#: ``abm.config``).
PERFECT = "perfect"


class OwnForecast:
    """One prosumer's forecasts of its own load and PV over the rest of each day of a run.

    ``load_kw_by_day`` and ``pv_kw_by_day``: its own profiles of every calendar day,
    ``(365, T)`` (or ``(365, T, N)`` for ``N`` prosumers at once, the vectorised
    environment). A forecast of calendar day ``d`` made at interval ``t`` reads the
    :data:`LOOKBACK_DAYS` days before ``d`` and day ``d``'s intervals up to ``t``
    (:func:`check_inputs` slices off the rest); ``forecaster=None`` (``mpc-perfect``) reads
    day ``d``'s actual profile instead. Load and PV are forecast side by side, one forecaster
    call (each column's forecast is, bit for bit, its forecast alone). ``run_days`` maps a
    run day to its calendar day (:meth:`at` reads the run's interval of an observation).
    """

    def __init__(
        self,
        *,
        forecaster: Forecaster | None,
        load_kw_by_day: np.ndarray,
        pv_kw_by_day: np.ndarray,
        run_days: Sequence[int] = (),
    ) -> None:
        load = np.asarray(load_kw_by_day, dtype=float)
        load = load.reshape(*load.shape[:2], -1)
        pv = np.asarray(pv_kw_by_day, dtype=float).reshape(load.shape)
        self.forecaster = forecaster
        self.n = load.shape[2]
        #: Load then PV of every prosumer, side by side: ``(365, T, 2 N)``, each column's
        #: intervals contiguous (a column's forecast is then, bit for bit, its forecast alone).
        columns = np.concatenate([load, pv], axis=2).transpose(0, 2, 1)  # (365, 2 N, T)
        self.by_day = np.ascontiguousarray(columns).transpose(0, 2, 1)
        self.run_days = tuple(run_days)
        self.steps = self.by_day.shape[1]

    def _forecast(self, calendar: int, seen: int, today: np.ndarray) -> np.ndarray:
        """``today`` (``(T, 2 N)``) as forecast with ``seen`` intervals seen."""
        if self.forecaster is None:
            return self.by_day[calendar]
        window = slice(max(0, calendar - LOOKBACK_DAYS), calendar)
        return self.forecaster(self.by_day[window], today, seen)

    def day(self, calendar: int) -> tuple[np.ndarray, np.ndarray]:
        """Every forecast of calendar day ``calendar``: load and PV, ``(T, T, N)`` each,
        ``[t]`` the day as forecast at interval ``t`` (its own and earlier intervals seen)."""
        today = self.by_day[calendar]
        both = np.stack([self._forecast(calendar, t + 1, today) for t in range(self.steps)])
        return both[..., : self.n], both[..., self.n :]

    def at(self, obs: SeenInterval) -> tuple[np.ndarray, np.ndarray]:
        """Load and PV (kW, ``(T - t,)`` each, one prosumer) from ``obs``'s interval ``t`` to
        the day's end, as forecast at ``obs``: the interval's own values are ``obs``'s."""
        day, t = divmod(obs.interval, self.steps)
        if not 0 <= day < len(self.run_days):
            raise ForecastError(
                f"forecast: observation interval = {obs.interval}: must be a run interval in "
                f"[0, {len(self.run_days) * self.steps})"
            )
        calendar = self.run_days[day]
        today = self.by_day[calendar].copy(order="K")
        today[t] = obs.load_kw, obs.pv_kw
        ahead = self._forecast(calendar, t + 1, today)[t:].copy()
        ahead[0] = obs.load_kw, obs.pv_kw  # the interval's own values are observed
        return ahead[:, 0], ahead[:, 1]
