"""A year of household load and PV profiles, and the train/test split of its days.

The data is the committed file ``abm/data/profiles.npz`` (provenance, units and licence in
``abm/data/PROFILES.md``), derived from SimBench's standard profiles by
``scripts/prepare_profiles.py``. It holds 365 days at 15-minute resolution:

* load profiles, per unit of their annual peak (``load_p_pu``), one column per name in
  ``load_names`` (SimBench's residential ``H0-*`` profiles);
* PV profiles in kW per kWp installed (``pv_p_kw_per_kwp``), one column per name in
  ``pv_names`` (SimBench's ``PV1`` .. ``PV8``).

:func:`load_profiles` returns them at a market interval of 15, 30 or 60 minutes (60 by
default). PV is averaged over each interval (energy kept). Load is averaged and then rescaled
so that its annual peak *at that resolution* is exactly 1.0: a prosumer whose load is scaled to
``load_peak_kw`` draws exactly that in its busiest interval of the year, whatever the interval.

Days: day ``d`` (0..364) runs from 00:00 to 24:00 of the SimBench profile clock; day 0 is
1 January 2016 and 29 February is left out. Every fifth day (``d % 5 == 4``) is a held-out test
day (:data:`TEST_DAYS`, 73 days), the rest are training days (:data:`TRAIN_DAYS`, 292 days), so
every season and, as 5 and 7 are coprime, every weekday is in both sets.
"""

from __future__ import annotations

import functools
import io
import json
import zipfile
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import numpy as np

from abm.errors import AbmError, ConfigError

#: File name of the packaged profile data, inside ``abm/data/``.
PROFILE_FILE = "profiles.npz"
#: Days in the profile year (29 February of the leap source year 2016 is dropped).
DAYS = 365
MINUTES_PER_DAY = 24 * 60
#: Market intervals the profiles can be delivered at, minutes.
SUPPORTED_INTERVALS_MIN = (15, 30, 60)
DEFAULT_INTERVAL_MIN = 60
#: Every ``TEST_EVERY_N_DAYS``-th day is a held-out test day.
TEST_EVERY_N_DAYS = 5
#: Held-out test days: 4, 9, 14, ..., 364.
TEST_DAYS: tuple[int, ...] = tuple(range(TEST_EVERY_N_DAYS - 1, DAYS, TEST_EVERY_N_DAYS))
#: Training days: every day that is not a test day.
TRAIN_DAYS: tuple[int, ...] = tuple(d for d in range(DAYS) if d not in frozenset(TEST_DAYS))
#: Validation days, carved from the training days: every fifth training day from the third
#: (58 days spread over the year). Every choice made while training (budget, settings, which
#: team is exported) reads these days, never :data:`TEST_DAYS` (``docs/ea-matd3.md``).
VALIDATION_DAYS: tuple[int, ...] = TRAIN_DAYS[2::5]
#: The training days learners draw their episodes from: the training days less validation.
FIT_DAYS: tuple[int, ...] = tuple(d for d in TRAIN_DAYS if d not in frozenset(VALIDATION_DAYS))
#: Upper bound accepted for PV output, kW per kWp (cloud enhancement can exceed 1 briefly).
PV_MAX_KW_PER_KWP = 1.2
#: Tolerance on the stored load peak of 1.0 (float32 storage).
PEAK_TOLERANCE = 1e-5

_REQUIRED_KEYS = ("interval_min", "load_names", "pv_names", "load_p_pu", "pv_p_kw_per_kwp")


class ProfileDataError(AbmError):
    """The profile data file is missing, unreadable or inconsistent; the message names it."""


@dataclass(frozen=True, eq=False)
class Profiles:
    """Load and PV profiles of every day at one market interval (arrays are read-only).

    ``load_p_pu[d, t, j]``: load profile ``load_names[j]`` in interval ``t`` of day ``d``, per
    unit of its annual peak at this resolution. ``pv_p_kw_per_kwp[d, t, j]``: PV profile
    ``pv_names[j]``, kW per kWp installed. Both have shape ``(DAYS, intervals_per_day, n)``.
    """

    interval_min: int
    load_names: tuple[str, ...]
    pv_names: tuple[str, ...]
    load_p_pu: np.ndarray
    pv_p_kw_per_kwp: np.ndarray
    source: dict[str, Any]

    @property
    def intervals_per_day(self) -> int:
        """Number of market intervals in one day."""
        return MINUTES_PER_DAY // self.interval_min

    def load_index(self, name: str) -> int:
        """Column of the load profile ``name``; :class:`ConfigError` if unknown."""
        return _index(self.load_names, name, "load_profile")

    def pv_index(self, name: str) -> int:
        """Column of the PV profile ``name``; :class:`ConfigError` if unknown."""
        return _index(self.pv_names, name, "pv_profile")


def _index(names: tuple[str, ...], name: str, field: str) -> int:
    try:
        return names.index(name)
    except ValueError:
        raise ConfigError(f"{field} = {name!r}: unknown profile; expected one of {names}") from None


def check_day(day: int) -> int:
    """Return ``day`` if it is a valid day index (0..364), else raise :class:`ConfigError`."""
    if isinstance(day, bool) or not isinstance(day, int | np.integer) or not 0 <= day < DAYS:
        raise ConfigError(f"day = {day!r}: must be an integer in [0, {DAYS})")
    return int(day)


def check_interval_min(interval_min: int) -> int:
    """Return ``interval_min`` if profiles can be delivered at it, else raise ConfigError."""
    if isinstance(interval_min, bool) or interval_min not in SUPPORTED_INTERVALS_MIN:
        raise ConfigError(
            f"interval_min = {interval_min!r}: must be one of {SUPPORTED_INTERVALS_MIN}"
        )
    return int(interval_min)


def packaged_profile_file() -> Traversable:
    """The packaged profile data file (works from an installed wheel too)."""
    return resources.files("abm").joinpath("data", PROFILE_FILE)


@functools.lru_cache(maxsize=len(SUPPORTED_INTERVALS_MIN))
def load_profiles(interval_min: int = DEFAULT_INTERVAL_MIN) -> Profiles:
    """The packaged profiles at ``interval_min`` minutes (cached; no network, no simbench)."""
    return read_profiles(packaged_profile_file(), interval_min)


def read_profiles(path: Path | Traversable, interval_min: int = DEFAULT_INTERVAL_MIN) -> Profiles:
    """Read, validate and resample a profile file; :class:`ProfileDataError` names the path."""
    interval_min = check_interval_min(interval_min)
    raw = _read_npz(path)
    stored_min, load, pv, load_names, pv_names = _validate(raw, path)
    if interval_min % stored_min:
        raise ProfileDataError(
            f"profile data file {path}: stored at {stored_min} min, "
            f"cannot deliver interval_min = {interval_min}"
        )
    load = _resample(load, stored_min, interval_min)
    load = load / load.max(axis=(0, 1))
    pv = _resample(pv, stored_min, interval_min)
    for array in (load, pv):
        array.setflags(write=False)
    return Profiles(
        interval_min=interval_min,
        load_names=load_names,
        pv_names=pv_names,
        load_p_pu=load,
        pv_p_kw_per_kwp=pv,
        source=raw["source"],
    )


def _read_npz(path: Path | Traversable) -> dict[str, Any]:
    """The arrays of the npz file at ``path`` (copied out of the archive)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ProfileDataError(
            f"profile data file {path} cannot be read: {_one_line(exc)}"
        ) from None
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            missing = [key for key in _REQUIRED_KEYS if key not in npz.files]
            if missing:
                raise ProfileDataError(f"profile data file {path} lacks arrays {missing}")
            out: dict[str, Any] = {key: npz[key] for key in _REQUIRED_KEYS}
            source_json = str(npz["source_json"].item()) if "source_json" in npz.files else "{}"
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ProfileDataError(f"profile data file {path} is corrupt: {_one_line(exc)}") from None
    try:
        out["source"] = json.loads(source_json)
    except json.JSONDecodeError as exc:
        raise ProfileDataError(f"profile data file {path}: bad source_json: {exc}") from None
    return out


def _validate(
    raw: dict[str, Any], path: Path | Traversable
) -> tuple[int, np.ndarray, np.ndarray, tuple[str, ...], tuple[str, ...]]:
    """Check shapes, names and value ranges; return typed, day-shaped float64 arrays."""

    def bad(what: str) -> ProfileDataError:
        return ProfileDataError(f"profile data file {path}: {what}")

    stored = np.asarray(raw["interval_min"])
    if stored.size != 1 or not np.issubdtype(stored.dtype, np.integer):
        raise bad(f"interval_min = {stored.tolist()} must be one integer")
    stored_min = int(stored.item())
    if stored_min <= 0 or MINUTES_PER_DAY % stored_min:
        raise bad(f"interval_min = {stored_min} does not divide a day")
    steps = MINUTES_PER_DAY // stored_min
    names = {}
    for key in ("load_names", "pv_names"):
        values = tuple(str(v) for v in np.atleast_1d(raw[key]))
        if not values or len(set(values)) != len(values):
            raise bad(f"{key} = {values} must be non-empty and unique")
        names[key] = values
    arrays = {}
    for key, names_key in (("load_p_pu", "load_names"), ("pv_p_kw_per_kwp", "pv_names")):
        array = np.asarray(raw[key])
        expected = (DAYS * steps, len(names[names_key]))
        if array.shape != expected or not np.issubdtype(array.dtype, np.floating):
            raise bad(f"{key} has shape {array.shape} {array.dtype}, expected {expected} float")
        if not np.isfinite(array).all():
            raise bad(f"{key} has non-finite values")
        arrays[key] = array.astype(np.float64).reshape(DAYS, steps, -1)
    load, pv = arrays["load_p_pu"], arrays["pv_p_kw_per_kwp"]
    peaks = load.max(axis=(0, 1))
    if load.min() < 0 or np.abs(peaks - 1.0).max() > PEAK_TOLERANCE:
        raise bad(f"load_p_pu must be >= 0 with annual peak 1.0, peaks are {peaks.tolist()}")
    if pv.min() < 0 or pv.max() > PV_MAX_KW_PER_KWP:
        raise bad(f"pv_p_kw_per_kwp must lie in [0, {PV_MAX_KW_PER_KWP}]")
    return stored_min, load, pv, names["load_names"], names["pv_names"]


def _resample(values: np.ndarray, stored_min: int, interval_min: int) -> np.ndarray:
    """Average ``(DAYS, steps, n)`` values over blocks of ``interval_min`` minutes."""
    factor = interval_min // stored_min
    days, steps, n = values.shape
    return values.reshape(days, steps // factor, factor, n).mean(axis=2)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
