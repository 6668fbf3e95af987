"""What the DSO publishes before each interval, computed once per day and cached.

Envelopes and indicative Var prices depend only on forecasts, so the vectorised environment
looks them up instead of solving them every step. They are computed by the DSO's own
:func:`dso.agent.publication`, interval by interval, and kept in memory and on disk:
``$P2PVAR_CACHE`` (default ``~/.cache/p2pvar``) ``/publications/<key>/day<DDD>.npz``, where
``<key>`` hashes every input (feeder, scenario, profile data, the DSO's publication rules,
export caps, Var market, and the source of the modules that compute them, constants included),
so a change of any input or rule writes a new directory. One day is five ``(intervals, N)`` float64
arrays: about 30 kB on ieee33 (N = 32), 75 kB on swiss161 (N = 78), 24 intervals.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np

import dso.agent
import dso.doe
import dso.networks
import dso.powerflow
import dso.sensitivity
import dso.var_price
from abm.inputs.profiles import PROFILE_FILE
from abm.inputs.scenario import Scenario, scenario_to_dict
from dso.agent import PublicationRules
from dso.networks import Feeder

#: Environment variable naming the cache root (default ``~/.cache/p2pvar``).
CACHE_ENV = "P2PVAR_CACHE"
#: Modules whose source is part of the key (the rules and constants of the publication).
RULE_MODULES = (dso.agent, dso.doe, dso.networks, dso.powerflow, dso.sensitivity, dso.var_price)
#: A record of one day cached by :class:`DayCache`: a dataclass of arrays.
R = TypeVar("R")


@dataclass(frozen=True)
class DayPublication:
    """One day's envelopes and the indicative Var price at each prosumer's bus."""

    export_kw: np.ndarray
    import_kw: np.ndarray
    q_min_kvar: np.ndarray
    q_max_kvar: np.ndarray
    var_price_eur_per_kvarh: np.ndarray


def cache_root() -> Path:
    """The cache root: ``$P2PVAR_CACHE`` or ``~/.cache/p2pvar``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "p2pvar")


def publication_key(
    feeder: Feeder,
    scenario: Scenario,
    *,
    var_market: bool,
    rules: PublicationRules,
    export_cap_kw: np.ndarray | None,
) -> str:
    """A hash of every input of the publication (see the module docstring)."""
    h = hashlib.sha256()
    h.update(pickle.dumps(feeder))
    h.update(json.dumps(scenario_to_dict(scenario), sort_keys=True).encode())
    h.update((Path(__file__).parents[1] / "data" / PROFILE_FILE).read_bytes())
    caps = None if export_cap_kw is None else np.asarray(export_cap_kw, dtype=float).tolist()
    h.update(json.dumps([var_market, *dataclasses.astuple(rules), caps]).encode())
    for module in RULE_MODULES:
        h.update(Path(module.__file__ or "").read_bytes())
    return h.hexdigest()[:24]


class DayCache(Generic[R]):
    """Records of one calendar day (a dataclass of arrays) in memory, backed by ``.npz`` files
    under :func:`cache_root` ``/<kind>/<key>/day<DDD>.npz``."""

    def __init__(
        self,
        kind: str,
        record: type[R],
        key: str,
        compute_day: Callable[[int], R],
        root: Path | None = None,
    ) -> None:
        """``compute_day(day)``: the record of a calendar day (called on a miss)."""
        self.directory = (root or cache_root()) / kind / key
        self._record = record
        self._fields = [f.name for f in dataclasses.fields(record)]  # type: ignore[arg-type]
        self._compute_day = compute_day
        self._days: dict[int, R] = {}
        self.computed_days = 0

    def day(self, day: int) -> R:
        """The record of calendar ``day``: from memory, disk, or computed and stored."""
        hit = self._days.get(day)
        if hit is not None:
            return hit
        path = self.directory / f"day{day:03d}.npz"
        if path.exists():
            with np.load(path) as data:
                rec = self._record(**{name: data[name] for name in self._fields})
        else:
            rec = self._compute_day(day)
            self.computed_days += 1
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
            np.savez(tmp, **{name: getattr(rec, name) for name in self._fields})
            tmp.replace(path)  # atomic: a concurrent reader never sees half a file
        self._days[day] = rec
        return rec

    def size_bytes(self) -> int:
        """Bytes of this key's files on disk."""
        if not self.directory.exists():
            return 0
        return sum(p.stat().st_size for p in self.directory.glob("day*.npz"))


class PublicationCache(DayCache[DayPublication]):
    """Day publications (:class:`DayPublication`) in the cache's ``publications`` folder."""

    def __init__(
        self, key: str, compute_day: Callable[[int], DayPublication], root: Path | None = None
    ) -> None:
        """``compute_day(day)``: the publication of a calendar day (called on a miss)."""
        super().__init__("publications", DayPublication, key, compute_day, root)
