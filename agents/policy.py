"""What a prosumer's policy sees and decides, and the baseline policies.

A policy maps an :class:`Observation` to a normalised action vector in ``[-1, 1]^4``
(:data:`ACTION_DIM`); :class:`Action` names its components. The prosumer agent turns the
action into a feasible physical plan (see :mod:`agents.plan`), so any policy, including a
learned actor or a random one, can only ask for what the envelope and the inverter allow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import astuple, dataclass
from typing import TYPE_CHECKING, Generic, Protocol

import numpy as np

from agents.arrays import F, Floats, namespace
from agents.errors import AgentError

if TYPE_CHECKING:
    from agents.outlook import Outlook

ACTION_DIM = 4
#: Hours of a day (the tariffs are hourly).
HOURS_PER_DAY = 24
#: The features of the observation record alone, in :meth:`Observation.to_vector` order
#: (listed with their formulas in docs/market.md): the whole observation of formats 1 and 2
#: of the actor files. Powers are divided by :func:`scale_kw`.
BASE_FEATURES: tuple[str, ...] = (
    "hour_sin",  # sin(2 pi hour / 24)
    "hour_cos",  # cos(2 pi hour / 24)
    "load_p",  # load_kw / scale
    "load_q",  # load_q_kvar / scale
    "pv_p",  # pv_kw / scale
    "soc_fraction",  # soc_kwh / battery_kwh (0 without a battery)
    "battery_p",  # battery_kw / scale
    "export_limit",  # export_kw / scale
    "import_limit",  # import_kw / scale
    "q_min_limit",  # q_min_kvar / scale (reactive envelope, inverter q)
    "q_max_limit",  # q_max_kvar / scale
    "var_price",  # 10 var_price_eur_per_kvarh
    "retail_price",  # 3 retail_eur_per_kwh
    "feed_in_price",  # 3 feed_in_eur_per_kwh
    "last_p2p_price",  # 3 last_price_eur_per_kwh
    "last_voltage",  # 10 (last_vm_pu - 1)
    "market_mode",  # var_market + 2 p2p_market (0 grid-only, 1 var, 2 p2p, 3 multi)
)
#: The features of the prosumer's outlook (:class:`agents.outlook.Outlook`), appended in
#: format 3: absolute sizes and powers, its own forecasts and its tariff ahead. ``s`` is
#: :func:`size_kw`; forecast windows in hours after the current interval.
OUTLOOK_FEATURES: tuple[str, ...] = (
    "pv_kwp_abs",  # pv_kwp / 100
    "battery_kwh_abs",  # battery_kwh / 100
    "battery_kw_abs",  # battery_kw / 100
    "inverter_kva_abs",  # inverter_kva / 100
    "load_abs",  # load_kw / 100
    "pv_abs",  # pv_kw / 100
    "pv_next_1h",  # mean forecast PV over the next hour / s
    "pv_next_3h",  # ... over the next 3 hours / s
    "pv_next_4_9h",  # ... over hours 4..9 ahead / s
    "load_next_1h",  # the same for load
    "load_next_3h",
    "load_next_4_9h",
    "net_rest_of_day",  # (PV - load) forecast kWh after the interval / max(battery_kwh, 1)
    "pv_rest_of_day",  # forecast PV kWh after the interval / (24 s)
    "load_rest_of_day",  # forecast load kWh after the interval / (24 s)
    "retail_next",  # 3 retail at the next interval (the last one's own at the day's end)
    "retail_max_ahead",  # 3 max retail from the interval to the day's end
    "retail_min_ahead",  # 3 min retail from the interval to the day's end
    "hours_left",  # (T - 1 - t) / T, T intervals a day
)
#: Names of the observation features in :func:`observation_vector` order (format 3): the
#: record's, then the outlook's.
OBSERVATION_FEATURES: tuple[str, ...] = BASE_FEATURES + OUTLOOK_FEATURES
#: Features of the record alone (what an actor file of format 1 or 2 reads).
BASE_OBS_DIM = len(BASE_FEATURES)
OBS_DIM = len(OBSERVATION_FEATURES)
#: Absolute sizes and powers (kW, kWh, kVA) are divided by this in the outlook features.
ABSOLUTE_SCALE_KW = 100.0
#: Every feature is clipped into ``[-OBS_BOUND, OBS_BOUND]`` (a forecast divided by the
#: ``1e-3`` floor of :func:`size_kw`, for a prosumer without inverter or battery, is large).
OBS_BOUND = 1e3

#: Price component of a truthful order on either side (see :class:`Action`).
TRUTHFUL_PRICE = -1.0


class InvalidAction(AgentError):
    """A policy returned an action that is not a finite vector of the right length."""


@dataclass(frozen=True)
class Observation(Generic[F]):
    """A prosumer's view at the start of an interval (kW, kWh, EUR/kWh, EUR/kvarh, pu): the
    one list of observation fields.

    Numbers for one prosumer (the agent), or arrays of worlds x prosumers for a batch (the
    vectorised environment; ``hour_of_day`` and the market flags are then shared)."""

    hour_of_day: float
    load_kw: F
    load_q_kvar: F
    pv_kw: F
    soc_kwh: F
    battery_kwh: F
    battery_kw: F
    inverter_kva: F
    export_kw: F
    import_kw: F
    q_min_kvar: F  # the envelope's range of the inverter's reactive power (<= 0)
    q_max_kvar: F  # (>= 0)
    var_price_eur_per_kvarh: F
    retail_eur_per_kwh: F
    feed_in_eur_per_kwh: F
    last_price_eur_per_kwh: F
    last_vm_pu: F
    p2p_market: bool
    var_market: bool
    #: The run's interval (-1 where unknown); not a feature (policies that plan, the MPC).
    interval: int = -1

    @property
    def scale_kw(self) -> float:
        """Reference power used to normalise the observation vector."""
        return float(scale_kw(self.inverter_kva, self.battery_kw, self.load_kw))

    def to_vector(self, outlook: Outlook | None = None) -> np.ndarray:
        """Normalised features (float32) for learned actors (:func:`observation_vector`)."""
        return observation_vector(self, outlook)


def scale_kw(inverter_kva: Floats, battery_kw: Floats, load_kw: Floats) -> Floats:
    """Reference power of the observation: ``max(inverter_kva, battery_kw, load_kw, 1e-3)``."""
    xp = namespace(inverter_kva, battery_kw, load_kw)
    return xp.maximum(xp.maximum(xp.maximum(inverter_kva, battery_kw), load_kw), 1e-3)


def size_kw(inverter_kva: Floats, battery_kw: Floats) -> Floats:
    """Reference power of the outlook's forecasts: ``max(inverter_kva, battery_kw, 1e-3)``
    (the prosumer's sizes only, so absolute kW can be recovered)."""
    xp = namespace(inverter_kva, battery_kw)
    return xp.maximum(xp.maximum(inverter_kva, battery_kw), 1e-3)


def observation_features(obs: Observation, outlook: Outlook | None = None) -> list[Floats]:
    """The :data:`BASE_FEATURES` of ``obs`` (float64), then with ``outlook`` its
    :data:`OUTLOOK_FEATURES` (:func:`outlook_features`), one entry per feature: numbers for
    one prosumer (:meth:`Observation.to_vector`), arrays for a batch."""
    xp = namespace(obs.load_kw, obs.inverter_kva, obs.battery_kw, obs.battery_kwh)
    s = scale_kw(obs.inverter_kva, obs.battery_kw, obs.load_kw)
    angle = 2.0 * math.pi * obs.hour_of_day / HOURS_PER_DAY
    has_battery = obs.battery_kwh > 0
    soc_fraction = xp.where(
        has_battery, obs.soc_kwh / xp.where(has_battery, obs.battery_kwh, 1.0), 0.0
    )
    return [
        math.sin(angle),
        math.cos(angle),
        obs.load_kw / s,
        obs.load_q_kvar / s,
        obs.pv_kw / s,
        soc_fraction,
        obs.battery_kw / s,
        obs.export_kw / s,
        obs.import_kw / s,
        obs.q_min_kvar / s,
        obs.q_max_kvar / s,
        10.0 * obs.var_price_eur_per_kvarh,
        obs.retail_eur_per_kwh * 3.0,
        obs.feed_in_eur_per_kwh * 3.0,
        obs.last_price_eur_per_kwh * 3.0,
        10.0 * (obs.last_vm_pu - 1.0),
        float(obs.var_market) + 2.0 * float(obs.p2p_market),
    ] + ([] if outlook is None else outlook_features(obs, outlook))


class ProsumerNow(Protocol):
    """What the outlook features read of the observation (an :class:`Observation` is one):
    the prosumer's sizes and its load and PV of the interval."""

    @property
    def load_kw(self) -> Floats: ...
    @property
    def pv_kw(self) -> Floats: ...
    @property
    def battery_kwh(self) -> Floats: ...
    @property
    def battery_kw(self) -> Floats: ...
    @property
    def inverter_kva(self) -> Floats: ...


def outlook_features(obs: ProsumerNow, outlook: Outlook) -> list[Floats]:
    """The :data:`OUTLOOK_FEATURES` of ``obs`` and the prosumer's ``outlook`` at it (they
    read no state: the vectorised environment computes them once per day and interval)."""
    xp = namespace(obs.battery_kwh, obs.inverter_kva, obs.battery_kw)
    s = size_kw(obs.inverter_kva, obs.battery_kw)
    a = ABSOLUTE_SCALE_KW
    o = outlook
    t, steps = o.interval_of_day, o.intervals_per_day
    return [
        o.pv_kwp / a,
        obs.battery_kwh / a,
        obs.battery_kw / a,
        obs.inverter_kva / a,
        obs.load_kw / a,
        obs.pv_kw / a,
        o.pv_next_1h_kw / s,
        o.pv_next_3h_kw / s,
        o.pv_next_4_9h_kw / s,
        o.load_next_1h_kw / s,
        o.load_next_3h_kw / s,
        o.load_next_4_9h_kw / s,
        (o.pv_rest_kwh - o.load_rest_kwh) / xp.maximum(obs.battery_kwh, 1.0),
        o.pv_rest_kwh / (HOURS_PER_DAY * s),
        o.load_rest_kwh / (HOURS_PER_DAY * s),
        3.0 * o.retail_next_eur_per_kwh,
        3.0 * o.retail_max_ahead_eur_per_kwh,
        3.0 * o.retail_min_ahead_eur_per_kwh,
        (steps - 1 - t) / steps,
    ]


def observation_vector(obs: Observation, outlook: Outlook | None = None) -> np.ndarray:
    """:func:`feature_vector` of :func:`observation_features`: ``(BASE_OBS_DIM,)`` for one
    prosumer (``(OBS_DIM,)`` with its ``outlook``), ``(..., BASE_OBS_DIM or OBS_DIM)`` for a
    batch."""
    return feature_vector(observation_features(obs, outlook))


def feature_vector(features: list[Floats]) -> np.ndarray:
    """``features`` as one float32 array, the last axis a feature, clipped into
    ``[-OBS_BOUND, OBS_BOUND]``."""
    shape = np.broadcast(*features).shape
    if not shape:
        vector = np.array(features, dtype=np.float32)
    else:
        vector = np.empty((*shape, len(features)), dtype=np.float32)
        for k, value in enumerate(features):
            vector[..., k] = value
    return np.clip(vector, -OBS_BOUND, OBS_BOUND, out=vector)


@dataclass(frozen=True)
class Action(Generic[F]):
    """A normalised action; every component in ``[-1, 1]``.

    - ``battery``: battery injection as a fraction of its power rating (+1 full discharge).
    - ``trade``: share of the feasible net position put on the P2P market, ``(trade + 1) / 2``.
    - ``price``: limit price relative to the side the order ends on after projection
      (:mod:`agents.orders`): -1 is truthful (a seller asks the feed-in tariff, a buyer bids
      the retail tariff), +1 asks for the whole retail/feed-in spread.
    - ``q``: inverter reactive power as a fraction of the inverter rating (+1 injection),
      clipped into the envelope's ``[q_min_kvar, q_max_kvar]`` and the capability left
      after the active power.
    """

    battery: F
    trade: F
    price: F
    q: F

    @classmethod
    def from_vector(cls, vector: np.ndarray | list[float]) -> Action[float]:
        """Validate a policy output and clip it into ``[-1, 1]``."""
        values = np.asarray(vector, dtype=float).reshape(-1)
        if values.shape != (ACTION_DIM,):
            raise InvalidAction(f"action has {values.size} components, expected {ACTION_DIM}")
        components = values.tolist()  # plain floats: cheaper per element than numpy scalars
        for i, v in enumerate(components):
            if not math.isfinite(v):
                raise InvalidAction(f"action[{i}] ({_NAMES[i]}) = {v} is not a finite number")
        return Action(*[min(max(v, -1.0), 1.0) for v in components])

    def to_vector(self) -> np.ndarray:
        """The action as a float32 vector."""
        return np.array(astuple(self), dtype=np.float32)


_NAMES = ("battery", "trade", "price", "q")

#: The action of a prosumer whose policy fails: no battery, no order, unity power factor.
ABSTAIN: Action[float] = Action(battery=0.0, trade=-1.0, price=0.0, q=0.0)
_ABSTAIN_VECTOR = np.array(astuple(ABSTAIN), dtype=np.float64)


def played_action(policy: Policy, obs: Observation) -> tuple[Action[float], str]:
    """What one prosumer plays: its policy's action (:meth:`Action.from_vector`), or
    :data:`ABSTAIN` and the reason when the policy raises :class:`InvalidAction` (its action
    is malformed, or it has none)."""
    try:
        return Action.from_vector(policy.act(obs)), ""
    except InvalidAction as exc:
        return ABSTAIN, str(exc)


def played_actions(outputs: np.ndarray) -> tuple[Action[np.ndarray], np.ndarray]:
    """:func:`played_action` for a batch of outputs ``(..., ACTION_DIM)``: each clipped into
    ``[-1, 1]``, :data:`ABSTAIN` where a component is not finite; and where it abstained."""
    values = np.asarray(outputs, dtype=np.float64)
    bad = np.asarray(~np.isfinite(values).all(axis=-1))
    played = np.where(bad[..., None], _ABSTAIN_VECTOR, np.clip(values, -1.0, 1.0))
    return Action(played[..., 0], played[..., 1], played[..., 2], played[..., 3]), bad


class Policy(Protocol):
    """Anything that maps an observation to a normalised action vector."""

    def act(self, obs: Observation) -> np.ndarray: ...


class RulePolicy:
    """Rule-based baseline.

    Battery for self-consumption; the whole net position offered on the P2P market at the
    truthful limit price (``price = -1``: whichever side the projected order ends on, a seller
    asks the feed-in tariff, its outside option, and a buyer bids the retail tariff), so a
    uniform-price auction clears at the mid tariff; reactive power (:func:`rule_q`): local
    compensation of its own reactive demand while the indicative Var price says injection
    lowers the loss, else unity power factor.
    """

    def act(self, obs: Observation) -> np.ndarray:
        """See the class docstring."""
        return truthful_action(self_consumption(obs), rule_q(obs))


def self_consumption(obs: Observation) -> float:
    """Battery action covering the net load: charge the PV surplus, discharge the deficit."""
    return float(self_consumption_battery(obs.load_kw, obs.pv_kw, obs.battery_kw))


def self_consumption_battery(load_kw: Floats, pv_kw: Floats, battery_kw: Floats) -> Floats:
    """:func:`self_consumption` on plain numbers or arrays (the vectorised environment):
    ``(load - pv) / battery_kw`` clipped to ``[-1, 1]``, 0 without a battery."""
    xp = namespace(load_kw, pv_kw, battery_kw)
    has_battery = battery_kw > 0
    ratio = (load_kw - pv_kw) / xp.where(has_battery, battery_kw, 1.0)
    return xp.where(has_battery, xp.minimum(1.0, xp.maximum(-1.0, ratio)), 0.0)


def rule_q(obs: Observation) -> float:
    """Reactive power action of the rule policy: local compensation, or 0.

    In a Var market, while the indicative Var price is positive (injection at its bus lowers
    the loss at the forecast point), the inverter supplies the prosumer's own reactive demand
    (``q_inverter = load_q``, the plan clips it into the reactive envelope and the
    capability circle); otherwise it runs at unity power factor. Compensating at most its
    own demand shrinks every upstream branch's reactive flow without reversing it, so the
    loss never rises above unity power factor's (no Volt/Var droop: the envelopes keep
    voltages in range, and a droop on last interval's voltage overshoots the loss minimum).
    """
    return float(
        rule_q_action(
            obs.load_q_kvar, obs.inverter_kva, obs.var_price_eur_per_kvarh, obs.var_market
        )
    )


def rule_q_action(
    load_q_kvar: Floats, inverter_kva: Floats, var_price_eur_per_kvarh: Floats, var_market: bool
) -> Floats:
    """:func:`rule_q` on plain numbers or arrays (the vectorised environment)."""
    xp = namespace(load_q_kvar, inverter_kva, var_price_eur_per_kvarh)
    has_inverter = inverter_kva > 0
    pays = (var_price_eur_per_kvarh > 0) & has_inverter & var_market
    q = xp.minimum(1.0, xp.maximum(0.0, load_q_kvar) / xp.where(has_inverter, inverter_kva, 1.0))
    return xp.where(pays, q, 0.0)


def truthful_action(battery: float, q: float) -> np.ndarray:
    """The whole net position offered at the truthful limit price, with ``battery`` and ``q``."""
    return np.array([battery, 1.0, TRUTHFUL_PRICE, q], dtype=np.float32)


class TouPolicy:
    """Time-of-use-aware rule baseline, from the day's hourly retail tariff.

    Off-peak hours (the cheapest retail price of the day) charge the battery at full power;
    hours whose next off-peak or peak hour (the dearest price) is a peak hour keep the
    stored energy for it (charge the PV surplus, never discharge); every other hour, peak
    included, runs the battery for self-consumption. Orders and reactive power are the
    :class:`RulePolicy`'s (truthful, local compensation). A flat tariff
    has no off-peak or peak: the policy is then the rule policy.
    """

    def __init__(self, retail_eur_per_kwh: Sequence[float]) -> None:
        """``retail_eur_per_kwh``: the retail price of each hour of the day (24 values)."""
        prices = np.asarray(retail_eur_per_kwh, dtype=float)
        if prices.shape != (HOURS_PER_DAY,) or not np.isfinite(prices).all():
            raise AgentError(
                f"TouPolicy: retail_eur_per_kwh must be {HOURS_PER_DAY} finite numbers, "
                f"got {retail_eur_per_kwh!r}"
            )
        low, high = prices.min(), prices.max()
        flat = math.isclose(low, high)
        self.off_peak = tuple(not flat and p == low for p in prices)
        peak = tuple(not flat and p == high for p in prices)
        self.hold = tuple(_next_band_is_peak(h, self.off_peak, peak) for h in range(HOURS_PER_DAY))

    def act(self, obs: Observation) -> np.ndarray:
        """See the class docstring."""
        hour = int(obs.hour_of_day) % HOURS_PER_DAY
        battery = self.battery(hour, self_consumption(obs), obs.battery_kw)
        return truthful_action(float(battery), rule_q(obs))

    def battery(self, hour: int, self_consumption: Floats, battery_kw: Floats) -> Floats:
        """The battery action at ``hour`` from the self-consumption one (numbers or arrays):
        -1 (full charge) off-peak with a battery, at most 0 while holding for the peak."""
        xp = namespace(self_consumption, battery_kw)
        holding = xp.where(self.hold[hour], xp.minimum(self_consumption, 0.0), self_consumption)
        return xp.where(self.off_peak[hour] & (battery_kw > 0), -1.0, holding)


def _next_band_is_peak(hour: int, off_peak: tuple[bool, ...], peak: tuple[bool, ...]) -> bool:
    """Whether, from ``hour`` on (itself excluded, cyclically), a peak hour comes before an
    off-peak hour; never for an off-peak or peak hour itself."""
    if off_peak[hour] or peak[hour]:
        return False
    for step in range(1, HOURS_PER_DAY):
        h = (hour + step) % HOURS_PER_DAY
        if peak[h] or off_peak[h]:
            return peak[h]
    return False


class RandomPolicy:
    """Uniformly random actions from the agent's own seeded generator."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def act(self, obs: Observation) -> np.ndarray:
        """A uniform sample of ``[-1, 1]^4``."""
        return self.rng.uniform(-1.0, 1.0, ACTION_DIM).astype(np.float32)


class ExternalPolicy:
    """A policy whose next action is set from outside (the PettingZoo environment)."""

    def __init__(self) -> None:
        self.next_action: np.ndarray | None = None

    def act(self, obs: Observation) -> np.ndarray:
        """Return the action set with :meth:`set`, once."""
        if self.next_action is None:
            raise InvalidAction("no action was given to this prosumer for the interval")
        action, self.next_action = self.next_action, None
        return action

    def set(self, action: np.ndarray) -> None:
        """Set the action used at the next decision."""
        self.next_action = np.asarray(action, dtype=np.float32)
