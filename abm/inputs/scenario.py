"""The prosumer scenario: which buses host a prosumer, its equipment, and the tariffs.

A :class:`Scenario` is plain data (frozen dataclasses, validated on construction, with a JSON
round trip) so a run can write the resolved scenario beside its results and a user can supply
their own. :func:`default_scenario` builds the documented default from a feeder's base-case
load vector (see ``docs/scenario.md``); :func:`scenario_profiles` turns a scenario and a day
into per-interval kW arrays. This module never imports ``dso/``: the feeder enters as plain
arrays, or duck-typed through :func:`scenario_for`.

Sign convention: the arrays here are magnitudes. ``load_p_kw`` / ``load_q_kvar`` are demand
(consumption, >= 0) and ``pv_p_kw`` is the available PV output (>= 0); a prosumer's net
injection (positive = export) is ``pv_p_kw - load_p_kw`` plus its battery discharge.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from abm.errors import ConfigError
from abm.inputs.profiles import (
    DEFAULT_INTERVAL_MIN,
    MINUTES_PER_DAY,
    check_day,
    check_interval_min,
    load_profiles,
)
from abm.output.jsonfile import build_dataclass, json_object, load_json, write_json
from agents.policy import HOURS_PER_DAY

#: Version of the scenario JSON layout; :func:`scenario_from_dict` refuses any other.
SCENARIO_FORMAT_VERSION = 1

# Default time-of-use tariff, EUR/kWh, by hour of the day on the profile clock.
RETAIL_NIGHT_EUR_PER_KWH = 0.12  # 23:00-07:00
RETAIL_DAY_EUR_PER_KWH = 0.22  # 07:00-17:00 and 21:00-23:00
RETAIL_PEAK_EUR_PER_KWH = 0.32  # 17:00-21:00, the evening peak
FEED_IN_EUR_PER_KWH = 0.05  # flat
#: State of charge at the start of a run, as a fraction of the battery's capacity.
DEFAULT_INITIAL_SOC_FRACTION = 0.5
NIGHT_HOURS = frozenset((*range(0, 7), 23))
PEAK_HOURS = frozenset(range(17, 21))


def _number(
    value: Any,
    name: str,
    where: str = "",
    *,
    lo: float | None = None,
    lo_open: bool = False,
    hi: float | None = None,
) -> float:
    """``value`` as a finite float within the bounds, else :class:`ConfigError`."""
    ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = math.isfinite(value)
    rule = "must be a finite number"
    if ok and lo is not None and (value <= lo if lo_open else value < lo):
        ok, rule = False, f"must be {'>' if lo_open else '>='} {lo}"
    if ok and hi is not None and value > hi:
        ok, rule = False, f"must be <= {hi}"
    if not ok:
        raise ConfigError(f"{where}{name} = {value!r}: {rule}")
    return value


def _integer(value: Any, name: str, where: str = "") -> int:
    """``value`` as an int, else :class:`ConfigError` (bools are refused)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ConfigError(f"{where}{name} = {value!r}: must be an integer")
    return int(value)


def _text(value: Any, name: str, where: str = "") -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}{name} = {value!r}: must be a non-empty string")
    return value


def _coerce(obj: Any, name: str, value: Any) -> None:
    """Store a validated, plain-Python value on a frozen dataclass."""
    object.__setattr__(obj, name, value)


@dataclass(frozen=True)
class ProsumerSpec:
    """One prosumer: its bus, load, PV behind a smart inverter, and optional battery."""

    prosumer_id: str  # e.g. "p01"
    bus: int  # bus index in the feeder
    load_peak_kw: float  # annual peak of the load (scales the normalised load profile)
    load_profile: str  # name of the load profile (abm.inputs.profiles load_names)
    pv_profile: str  # name of the PV profile (abm.inputs.profiles pv_names)
    pv_kwp: float  # installed PV, kWp
    inverter_kva: float  # smart inverter rating: q_kvar**2 + p_kw**2 <= inverter_kva**2
    battery_kwh: float  # usable capacity; 0 = no battery
    battery_kw: float  # charge and discharge power limit; 0 = no battery
    battery_efficiency: float  # one-way (charge and discharge), in (0, 1]
    power_factor_load: float  # of the load (inductive), in (0, 1]
    initial_soc_fraction: float = DEFAULT_INITIAL_SOC_FRACTION  # stored energy at the start

    def __post_init__(self) -> None:
        where = f"prosumer {self.prosumer_id!r}: "
        _text(self.prosumer_id, "prosumer_id")
        _coerce(self, "bus", _integer(self.bus, "bus", where))
        if self.bus < 0:
            raise ConfigError(f"{where}bus = {self.bus}: must be >= 0")
        profiles = load_profiles()
        for name in ("load_peak_kw", "pv_kwp", "inverter_kva", "battery_kwh", "battery_kw"):
            _coerce(self, name, _number(getattr(self, name), name, where, lo=0.0))
        for name in ("battery_efficiency", "power_factor_load"):
            _coerce(
                self, name, _number(getattr(self, name), name, where, lo=0.0, lo_open=True, hi=1.0)
            )
        _coerce(
            self,
            "initial_soc_fraction",
            _number(self.initial_soc_fraction, "initial_soc_fraction", where, lo=0.0, hi=1.0),
        )
        if (self.battery_kwh > 0) != (self.battery_kw > 0):
            raise ConfigError(
                f"{where}battery_kw = {self.battery_kw!r}: battery_kwh = {self.battery_kwh!r}; "
                "both must be > 0 (battery) or both 0 (none)"
            )
        _prefixed(where, profiles.load_index, self.load_profile)
        _prefixed(where, profiles.pv_index, self.pv_profile)


@dataclass(frozen=True)
class PassiveLoadSpec:
    """Load at a bus that hosts no prosumer; the DSO forecasts it from its profile."""

    bus: int
    load_peak_kw: float
    load_profile: str
    power_factor_load: float

    def __post_init__(self) -> None:
        where = f"passive load at bus {self.bus!r}: "
        _coerce(self, "bus", _integer(self.bus, "bus", where))
        if self.bus < 0:
            raise ConfigError(f"{where}bus = {self.bus}: must be >= 0")
        _coerce(self, "load_peak_kw", _number(self.load_peak_kw, "load_peak_kw", where, lo=0.0))
        _coerce(
            self,
            "power_factor_load",
            _number(
                self.power_factor_load, "power_factor_load", where, lo=0.0, lo_open=True, hi=1.0
            ),
        )
        _prefixed(where, load_profiles().load_index, self.load_profile)


@dataclass(frozen=True)
class PassiveGeneratorSpec:
    """Static generation at a bus (a feeder's static generators), controlled by nobody: it
    follows a PV profile scaled by its rated power, and the DSO forecasts it."""

    bus: int
    rated_kw: float  # rated power; output = rated_kw x PV profile (kW per kWp)
    pv_profile: str  # name of the PV profile (abm.profiles pv_names)
    q_per_p: float = 0.0  # reactive over active output (injection), from the base case

    def __post_init__(self) -> None:
        where = f"passive generator at bus {self.bus!r}: "
        _coerce(self, "bus", _integer(self.bus, "bus", where))
        if self.bus < 0:
            raise ConfigError(f"{where}bus = {self.bus}: must be >= 0")
        _coerce(self, "rated_kw", _number(self.rated_kw, "rated_kw", where, lo=0.0))
        _coerce(self, "q_per_p", _number(self.q_per_p, "q_per_p", where))
        _prefixed(where, load_profiles().pv_index, self.pv_profile)


def _prefixed(where: str, check: Any, value: Any) -> None:
    """Run a profile-name check, prefixing its error with the owner of the field."""
    try:
        check(value)
    except ConfigError as exc:
        raise ConfigError(f"{where}{exc}") from None


def _default_retail() -> tuple[float, ...]:
    def price(hour: int) -> float:
        if hour in NIGHT_HOURS:
            return RETAIL_NIGHT_EUR_PER_KWH
        if hour in PEAK_HOURS:
            return RETAIL_PEAK_EUR_PER_KWH
        return RETAIL_DAY_EUR_PER_KWH

    return tuple(price(h) for h in range(HOURS_PER_DAY))


@dataclass(frozen=True)
class Tariffs:
    """Time-of-use retail and feed-in prices, EUR/kWh, one value per hour of the day (24)."""

    retail_eur_per_kwh: tuple[float, ...] = field(default_factory=_default_retail)
    feed_in_eur_per_kwh: tuple[float, ...] = (FEED_IN_EUR_PER_KWH,) * HOURS_PER_DAY

    def __post_init__(self) -> None:
        for name in ("retail_eur_per_kwh", "feed_in_eur_per_kwh"):
            values = getattr(self, name)
            if isinstance(values, str | bytes) or not isinstance(values, Sequence | np.ndarray):
                raise ConfigError(f"tariffs: {name} = {values!r}: must be {HOURS_PER_DAY} numbers")
            if len(values) != HOURS_PER_DAY:
                raise ConfigError(
                    f"tariffs: {name} has {len(values)} values: must be {HOURS_PER_DAY} (hourly)"
                )
            _coerce(
                self,
                name,
                tuple(_number(v, f"{name}[{h}]", "tariffs: ") for h, v in enumerate(values)),
            )
        for h, (retail, feed_in) in enumerate(
            zip(self.retail_eur_per_kwh, self.feed_in_eur_per_kwh, strict=True)
        ):
            if retail < 0 or feed_in > retail:
                raise ConfigError(
                    f"tariffs: feed_in_eur_per_kwh[{h}] = {feed_in!r}, retail_eur_per_kwh[{h}] = "
                    f"{retail!r}: need 0 <= retail and feed-in <= retail (no arbitrage)"
                )

    def per_interval(self, interval_min: int) -> tuple[np.ndarray, np.ndarray]:
        """Retail and feed-in prices, EUR/kWh, for each interval of a day, shape ``(T,)``."""
        repeat = 60 // check_interval_min(interval_min)
        return (
            np.repeat(np.asarray(self.retail_eur_per_kwh), repeat),
            np.repeat(np.asarray(self.feed_in_eur_per_kwh), repeat),
        )


@dataclass(frozen=True)
class Scenario:
    """The network, its prosumers, passive loads and generators, the tariffs and the market
    interval."""

    network: str  # network name, e.g. "ieee33"
    n_bus: int  # number of buses of the feeder (bus indices are 0..n_bus-1)
    slack_bus: int  # the feeder's slack (substation) bus; hosts no prosumer
    prosumers: tuple[ProsumerSpec, ...]
    passive_loads: tuple[PassiveLoadSpec, ...]  # loads at buses without a prosumer
    tariffs: Tariffs = field(default_factory=Tariffs)
    interval_min: int = DEFAULT_INTERVAL_MIN  # market interval, minutes (15, 30 or 60)
    passive_generators: tuple[PassiveGeneratorSpec, ...] = ()  # the feeder's static generators

    def __post_init__(self) -> None:
        _text(self.network, "network")
        _coerce(self, "n_bus", _integer(self.n_bus, "n_bus"))
        if self.n_bus < 1:
            raise ConfigError(f"n_bus = {self.n_bus}: must be >= 1")
        _coerce(self, "slack_bus", self._bus(self.slack_bus, "slack_bus"))
        _coerce(self, "interval_min", check_interval_min(self.interval_min))
        if not isinstance(self.tariffs, Tariffs):
            raise ConfigError(f"tariffs = {self.tariffs!r}: must be a Tariffs")
        for name, cls in (
            ("prosumers", ProsumerSpec),
            ("passive_loads", PassiveLoadSpec),
            ("passive_generators", PassiveGeneratorSpec),
        ):
            items = tuple(getattr(self, name))
            for i, item in enumerate(items):
                if not isinstance(item, cls):
                    raise ConfigError(f"{name}[{i}] = {item!r}: must be a {cls.__name__}")
                self._bus(item.bus, f"{name}[{i}].bus")
            _coerce(self, name, items)
        seen: set[str] = set()
        for i, spec in enumerate(self.prosumers):
            if spec.bus == self.slack_bus:
                raise ConfigError(f"prosumers[{i}].bus = {spec.bus}: is the slack bus")
            if spec.prosumer_id in seen:
                raise ConfigError(f"prosumers[{i}].prosumer_id = {spec.prosumer_id!r}: duplicate")
            seen.add(spec.prosumer_id)

    def _bus(self, bus: Any, name: str) -> int:
        bus = _integer(bus, name)
        if not 0 <= bus < self.n_bus:
            raise ConfigError(f"{name} = {bus}: must be in [0, {self.n_bus})")
        return bus

    @property
    def prosumer_ids(self) -> tuple[str, ...]:
        """Prosumer ids in scenario order (the column order of :class:`DayProfiles`)."""
        return tuple(p.prosumer_id for p in self.prosumers)

    @property
    def prosumer_buses(self) -> np.ndarray:
        """Bus of each prosumer, shape ``(n_prosumer,)``."""
        return np.array([p.bus for p in self.prosumers], dtype=np.int64)

    @property
    def intervals_per_day(self) -> int:
        """Number of market intervals per day."""
        return MINUTES_PER_DAY // self.interval_min


@dataclass(frozen=True)
class ScenarioOptions:
    """Knobs of :func:`default_scenario` (CLI flags derive from these fields)."""

    pv_ratio: float = field(
        default=4.0, metadata={"help": "PV kWp per kW of load peak at a prosumer with PV"}
    )
    pv_fraction: float = field(
        default=0.5, metadata={"help": "share of prosumers that own PV, in [0, 1]"}
    )
    inverter_kva_per_kwp: float = field(
        default=1.1, metadata={"help": "smart inverter rating, kVA per kWp of PV"}
    )
    battery_fraction: float = field(
        default=0.5, metadata={"help": "share of prosumers that own a battery, in [0, 1]"}
    )
    battery_kw_per_load_kw: float = field(
        default=0.5, metadata={"help": "battery power, kW per kW of load peak"}
    )
    battery_hours: float = field(
        default=2.0, metadata={"help": "battery capacity, hours at full battery power"}
    )
    battery_efficiency: float = field(
        default=0.95, metadata={"help": "one-way battery efficiency, in (0, 1]"}
    )
    power_factor_load: float = field(
        default=0.95, metadata={"help": "load power factor where the feeder gives no load_q_kvar"}
    )
    initial_soc_fraction: float = field(
        default=DEFAULT_INITIAL_SOC_FRACTION,
        metadata={"help": "battery state of charge at the start of a run, share of capacity"},
    )
    prosumer_fraction: float = field(
        default=1.0, metadata={"help": "share of loaded buses that host a prosumer (rest passive)"}
    )
    interval_min: int = field(
        default=DEFAULT_INTERVAL_MIN, metadata={"help": "market interval, minutes (15, 30, 60)"}
    )

    def __post_init__(self) -> None:
        for name in ("pv_ratio", "inverter_kva_per_kwp", "battery_kw_per_load_kw", "battery_hours"):
            _number(getattr(self, name), name, lo=0.0)
        shares = ("pv_fraction", "battery_fraction", "prosumer_fraction", "initial_soc_fraction")
        for name in shares:
            _number(getattr(self, name), name, lo=0.0, hi=1.0)
        for name in ("battery_efficiency", "power_factor_load"):
            _number(getattr(self, name), name, lo=0.0, lo_open=True, hi=1.0)
        check_interval_min(self.interval_min)


def _share(fraction: float, n: int) -> int:
    """``fraction`` of ``n`` items, rounded half up."""
    return math.floor(fraction * n + 0.5)


def _power_factors(
    load_p_kw: np.ndarray, load_q_kvar: np.ndarray | None, default: float
) -> np.ndarray:
    if load_q_kvar is None:
        return np.full(load_p_kw.shape, default)
    q = np.asarray(load_q_kvar, dtype=np.float64)
    if q.shape != load_p_kw.shape:
        raise ConfigError(
            f"load_q_kvar has shape {q.shape}: must match load_p_kw {load_p_kw.shape}"
        )
    bad = np.flatnonzero(~np.isfinite(q) | (q < 0))
    if bad.size:
        raise ConfigError(f"load_q_kvar[{bad[0]}] = {float(q[bad[0]])!r}: must be finite and >= 0")
    apparent = np.hypot(load_p_kw, q)
    return np.divide(load_p_kw, apparent, out=np.ones_like(apparent), where=apparent > 0)


def default_scenario(
    network: str,
    load_p_kw: np.ndarray,
    slack_bus: int,
    *,
    load_q_kvar: np.ndarray | None = None,
    gen_kwp: np.ndarray | None = None,
    gen_q_per_p: np.ndarray | None = None,
    options: ScenarioOptions | None = None,
    tariffs: Tariffs | None = None,
    seed: int = 0,
) -> Scenario:
    """The default scenario of a feeder from its base-case loads (``docs/scenario.md``).

    Every non-slack bus with base-case load ``load_p_kw[b] > 0`` hosts one aggregated prosumer
    (``p01``, ``p02``, ... in bus order) whose load peak is that load; with
    ``options.prosumer_fraction < 1`` a seeded subset does and the other loads stay passive, as
    does any load at the slack bus. Load and PV profiles are dealt round-robin in a seeded
    order; a seeded ``pv_fraction`` of prosumers has PV of ``pv_ratio`` x load peak, a seeded
    ``battery_fraction`` gets a battery; the inverter is ``inverter_kva_per_kwp`` x kWp, and at
    least the battery's power (a prosumer without PV or battery has no inverter). The load
    power factor is the base case's ``p / hypot(p, q)`` where ``load_q_kvar`` is given. Each
    bus with static generation ``gen_kwp[b] > 0`` (rated kW) gets a passive generator that
    follows a PV profile (dealt in a seeded order) at reactive ratio ``gen_q_per_p[b]``. Same
    inputs and seed, same scenario.
    """
    options = options if options is not None else ScenarioOptions()
    p_kw = np.asarray(load_p_kw, dtype=np.float64)
    if p_kw.ndim != 1 or p_kw.size == 0:
        raise ConfigError(f"load_p_kw has shape {p_kw.shape}: must be a non-empty vector")
    bad = np.flatnonzero(~np.isfinite(p_kw) | (p_kw < 0))
    if bad.size:
        raise ConfigError(f"load_p_kw[{bad[0]}] = {float(p_kw[bad[0]])!r}: must be finite and >= 0")
    slack_bus = _integer(slack_bus, "slack_bus")
    power_factor = _power_factors(p_kw, load_q_kvar, options.power_factor_load)
    profiles = load_profiles(options.interval_min)
    rng = np.random.default_rng(seed)

    loaded = [int(b) for b in np.flatnonzero(p_kw > 0) if b != slack_bus]
    load_profile = dict(
        zip(loaded, rng.permutation(np.resize(profiles.load_names, len(loaded))), strict=True)
    )
    hosts = sorted(
        int(b)
        for b in rng.choice(loaded, _share(options.prosumer_fraction, len(loaded)), replace=False)
    )
    pv_profile = rng.permutation(np.resize(profiles.pv_names, len(hosts)))
    with_battery = set(
        rng.choice(len(hosts), _share(options.battery_fraction, len(hosts)), replace=False).tolist()
    )
    with_pv = set(
        rng.choice(len(hosts), _share(options.pv_fraction, len(hosts)), replace=False).tolist()
    )
    width = max(2, len(str(len(hosts))))
    prosumers = []
    for i, bus in enumerate(hosts):
        peak_kw = float(p_kw[bus])
        pv_kwp = options.pv_ratio * peak_kw if i in with_pv else 0.0
        battery_kw = options.battery_kw_per_load_kw * peak_kw if i in with_battery else 0.0
        prosumers.append(
            ProsumerSpec(
                prosumer_id=f"p{i + 1:0{width}d}",
                bus=bus,
                load_peak_kw=peak_kw,
                load_profile=str(load_profile[bus]),
                pv_profile=str(pv_profile[i]),
                pv_kwp=pv_kwp,
                inverter_kva=max(options.inverter_kva_per_kwp * pv_kwp, battery_kw),
                battery_kwh=options.battery_hours * battery_kw,
                battery_kw=battery_kw if options.battery_hours > 0 else 0.0,
                battery_efficiency=options.battery_efficiency,
                power_factor_load=float(power_factor[bus]),
                initial_soc_fraction=options.initial_soc_fraction,
            )
        )
    host_set = set(hosts)
    passive = [
        PassiveLoadSpec(
            bus=int(b),
            load_peak_kw=float(p_kw[b]),
            load_profile=str(load_profile.get(int(b), profiles.load_names[0])),
            power_factor_load=float(power_factor[b]),
        )
        for b in np.flatnonzero(p_kw > 0)
        if int(b) not in host_set
    ]
    return Scenario(
        network=network,
        n_bus=int(p_kw.size),
        slack_bus=slack_bus,
        prosumers=tuple(prosumers),
        passive_loads=tuple(passive),
        tariffs=tariffs if tariffs is not None else Tariffs(),
        interval_min=options.interval_min,
        passive_generators=_passive_generators(gen_kwp, gen_q_per_p, p_kw.size, profiles, rng),
    )


def _passive_generators(
    gen_kwp: np.ndarray | None,
    gen_q_per_p: np.ndarray | None,
    n_bus: int,
    profiles: Any,
    rng: np.random.Generator,
) -> tuple[PassiveGeneratorSpec, ...]:
    """One passive generator per bus with rated generation, PV profiles in a seeded order
    (drawn after everything else, so a feeder without generation keeps its scenario)."""
    if gen_kwp is None:
        return ()
    kwp = np.asarray(gen_kwp, dtype=np.float64)
    ratio = np.zeros(n_bus) if gen_q_per_p is None else np.asarray(gen_q_per_p, dtype=np.float64)
    if kwp.shape != (n_bus,) or ratio.shape != (n_bus,):
        raise ConfigError(f"gen_kwp {kwp.shape} and gen_q_per_p {ratio.shape}: must be ({n_bus},)")
    buses = np.flatnonzero(kwp > 0)
    pv_profile = rng.permutation(np.resize(profiles.pv_names, len(buses)))
    return tuple(
        PassiveGeneratorSpec(
            bus=int(b), rated_kw=float(kwp[b]), pv_profile=str(pv), q_per_p=float(ratio[b])
        )
        for b, pv in zip(buses, pv_profile, strict=True)
    )


def scale_pv(scenario: Scenario, factor: float) -> Scenario:
    """``scenario`` with every prosumer's PV kWp times ``factor`` (>= 0); the inverter of a
    prosumer with PV scales alike, but never below its battery's power."""
    factor = _number(factor, "pv_scale", lo=0.0)
    if factor == 1.0:
        return scenario
    prosumers = tuple(
        dataclasses.replace(
            p,
            pv_kwp=p.pv_kwp * factor,
            inverter_kva=max(p.inverter_kva * factor, p.battery_kw),
        )
        if p.pv_kwp > 0
        else p
        for p in scenario.prosumers
    )
    return dataclasses.replace(scenario, prosumers=prosumers)


def pv_penetration(scenario: Scenario) -> float:
    """Installed PV (kWp) over the prosumers' and passive loads' summed load peaks (kW)."""
    peak_kw = sum(p.load_peak_kw for p in scenario.prosumers) + sum(
        p.load_peak_kw for p in scenario.passive_loads
    )
    return sum(p.pv_kwp for p in scenario.prosumers) / peak_kw if peak_kw > 0 else 0.0


class FeederLike(Protocol):
    """What :func:`scenario_for` reads from a feeder (e.g. ``dso.networks.Feeder``)."""

    @property
    def name(self) -> str: ...
    @property
    def slack_bus(self) -> int: ...
    @property
    def load_p_kw(self) -> np.ndarray: ...


def scenario_for(
    feeder: FeederLike,
    *,
    options: ScenarioOptions | None = None,
    tariffs: Tariffs | None = None,
    seed: int = 0,
) -> Scenario:
    """:func:`default_scenario` of a feeder object (duck-typed; ``load_q_kvar`` and the
    static generation ``gen_kwp``, ``gen_p_kw``, ``gen_q_kvar`` optional)."""
    gen_kwp = getattr(feeder, "gen_kwp", None)
    gen_q_per_p = None
    if gen_kwp is not None:
        gen_p, gen_q = np.asarray(feeder.gen_p_kw), np.asarray(feeder.gen_q_kvar)  # type: ignore[attr-defined]
        gen_q_per_p = np.divide(gen_q, gen_p, out=np.zeros_like(gen_q), where=gen_p > 0)
    return default_scenario(
        feeder.name,
        feeder.load_p_kw,
        feeder.slack_bus,
        load_q_kvar=getattr(feeder, "load_q_kvar", None),
        gen_kwp=gen_kwp,
        gen_q_per_p=gen_q_per_p,
        options=options,
        tariffs=tariffs,
        seed=seed,
    )


@dataclass(frozen=True, eq=False)
class DayProfiles:
    """Per-interval kW of one day of a scenario (T intervals; magnitudes, see module doc)."""

    day: int
    interval_min: int
    load_p_kw: np.ndarray  # (T, n_prosumer) prosumer demand
    load_q_kvar: np.ndarray  # (T, n_prosumer) prosumer reactive demand (inductive)
    pv_p_kw: np.ndarray  # (T, n_prosumer) available PV output (pv_kwp x profile)
    passive_p_kw: np.ndarray  # (T, n_bus) passive demand minus passive generation per bus
    passive_q_kvar: np.ndarray  # (T, n_bus) the same, reactive
    retail_eur_per_kwh: np.ndarray  # (T,)
    feed_in_eur_per_kwh: np.ndarray  # (T,)


def _tan_phi(power_factor: np.ndarray) -> np.ndarray:
    return np.sqrt(1.0 - power_factor**2) / power_factor


def scenario_profiles(scenario: Scenario, day: int) -> DayProfiles:
    """Load, PV, passive load and generation and prices of ``day`` (0..364) at the
    scenario's interval."""
    day = check_day(day)
    profiles = load_profiles(scenario.interval_min)
    load_pu = profiles.load_p_pu[day]
    pv_pu = profiles.pv_p_kw_per_kwp[day]
    pros = scenario.prosumers
    load_p_kw = load_pu[:, [profiles.load_index(p.load_profile) for p in pros]] * np.array(
        [p.load_peak_kw for p in pros]
    )
    pv_p_kw = pv_pu[:, [profiles.pv_index(p.pv_profile) for p in pros]] * np.array(
        [p.pv_kwp for p in pros]
    )
    load_q_kvar = load_p_kw * _tan_phi(np.array([p.power_factor_load for p in pros]))
    steps = scenario.intervals_per_day
    passive_p_kw = np.zeros((steps, scenario.n_bus))
    passive_q_kvar = np.zeros((steps, scenario.n_bus))
    for load in scenario.passive_loads:
        p_kw = load_pu[:, profiles.load_index(load.load_profile)] * load.load_peak_kw
        passive_p_kw[:, load.bus] += p_kw
        passive_q_kvar[:, load.bus] += p_kw * _tan_phi(np.array(load.power_factor_load))
    for gen in scenario.passive_generators:
        p_kw = pv_pu[:, profiles.pv_index(gen.pv_profile)] * gen.rated_kw
        passive_p_kw[:, gen.bus] -= p_kw
        passive_q_kvar[:, gen.bus] -= p_kw * gen.q_per_p
    retail, feed_in = scenario.tariffs.per_interval(scenario.interval_min)
    return DayProfiles(
        day=day,
        interval_min=scenario.interval_min,
        load_p_kw=load_p_kw,
        load_q_kvar=load_q_kvar,
        pv_p_kw=pv_p_kw,
        passive_p_kw=passive_p_kw,
        passive_q_kvar=passive_q_kvar,
        retail_eur_per_kwh=retail,
        feed_in_eur_per_kwh=feed_in,
    )


def scenario_to_dict(scenario: Scenario) -> dict[str, Any]:
    """The scenario as plain JSON-able data (with ``format_version``)."""
    return {"format_version": SCENARIO_FORMAT_VERSION, **dataclasses.asdict(scenario)}


def _items(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list | tuple):
        raise ConfigError(f"scenario.{key} = {value!r}: must be a JSON array")
    return list(value)


def scenario_from_dict(data: Mapping[str, Any]) -> Scenario:
    """Rebuild and validate a scenario from :func:`scenario_to_dict` data."""
    body = dict(json_object(data, "scenario"))
    version = body.pop("format_version", None)
    if version != SCENARIO_FORMAT_VERSION:
        raise ConfigError(
            f"scenario.format_version = {version!r}: expected {SCENARIO_FORMAT_VERSION}"
        )
    if "prosumers" in body:
        body["prosumers"] = tuple(
            build_dataclass(ProsumerSpec, item, f"scenario.prosumers[{i}]")
            for i, item in enumerate(_items(data, "prosumers"))
        )
    if "passive_loads" in body:
        body["passive_loads"] = tuple(
            build_dataclass(PassiveLoadSpec, item, f"scenario.passive_loads[{i}]")
            for i, item in enumerate(_items(data, "passive_loads"))
        )
    if "passive_generators" in body:
        body["passive_generators"] = tuple(
            build_dataclass(PassiveGeneratorSpec, item, f"scenario.passive_generators[{i}]")
            for i, item in enumerate(_items(data, "passive_generators"))
        )
    if "tariffs" in body:
        body["tariffs"] = build_dataclass(Tariffs, body["tariffs"], "scenario.tariffs")
    return build_dataclass(Scenario, body, "scenario")


def save_scenario(scenario: Scenario, path: Path) -> Path:
    """Write the scenario as JSON to ``path`` (via a temporary file and a rename)."""
    return write_json(path, scenario_to_dict(scenario))


def load_scenario(path: Path) -> Scenario:
    """Read a scenario JSON file; :class:`ConfigError` names the file on any problem."""
    return load_json(path, "scenario file", ConfigError, scenario_from_dict)
