"""The configuration of one market simulation run (``p2pvar simulate``, the PettingZoo env).

Every choice list is one ``StrEnum`` (owned by the layer whose rule it selects: fairness and
Var pricing by ``dso``) or one registry (an extension point: the clearing protocols by
``agents.clearing.PROTOCOLS``, the policies by ``agents.policy_registry.POLICIES``); the
CLI's choices and :class:`SimConfig`'s validation are derived from the field's enum type or
its ``choices`` registry.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from enum import Enum, StrEnum

from abm.errors import ConfigError
from agents.clearing import PROTOCOLS
from agents.forecast import DEFAULT_FORECASTER, make_forecaster
from agents.interval import IntervalScript, interval_script
from agents.policy_registry import POLICIES, PolicyKind, parse_policy
from agents.registry import Registry
from dso.doe import EnvelopeRule, Fairness
from dso.var_price import VarPricing


class Market(StrEnum):
    """Market mode: which of the P2P energy market and the Var support service run."""

    GRID_ONLY = "grid-only"
    P2P = "p2p"
    VAR = "var"
    MULTI = "multi"


#: The run-level policies (they need every prosumer's data), beside the agent-level ones
#: that ``agents.policy_registry`` registers; each given by its ``module:attr`` address,
#: imported when a run builds it (a prosumer process never imports the LP solver).
#: Each prosumer's own trained actor, with its outlook (its own forecasts) built from the
#: run's inputs as the MPC's are; a prosumer's process builds its own (deploy).
POLICIES["checkpoint"] = PolicyKind("abm.inputs.mpc_policies:checkpoint_policies", argument="DIR")
POLICIES["optimum"] = PolicyKind("abm.optimum.lp:optimum_policies", whole_run=True)
#: The forecast MPC (docs/mpc.md): each prosumer's own LP on its own forecasts; ``mpc`` is
#: ``mpc:seasonal``. A prosumer's process builds its own (deploy), from the run's inputs.
POLICIES["mpc"] = PolicyKind(
    "abm.inputs.mpc_policies:mpc_policies",
    argument="FORECASTER",
    default_argument=DEFAULT_FORECASTER,
    check_argument=make_forecaster,
)
POLICIES["mpc-perfect"] = PolicyKind("abm.inputs.mpc_policies:mpc_perfect_policies")


class DaySet(StrEnum):
    """Which days the profiles are drawn from."""

    TEST = "test"
    TRAIN = "train"
    VALIDATION = "validation"


#: Default P2P network charge, EUR/kWh (its source: ``docs/market.md``).
DEFAULT_NETWORK_CHARGE_EUR_PER_KWH = 0.03
#: Default static export cap, kW per kW of the prosumer's load peak (``docs/grid.md``).
DEFAULT_EXPORT_CAP_KW_PER_LOAD_KW = 1.0


E = typing.TypeVar("E", bound=Enum)


def enum_value(
    choices: type[E], name: str, value: object, error: type[Exception] = ConfigError
) -> E:
    """``value`` as a member of ``choices``; ``error`` naming ``name`` and ``value`` otherwise."""
    try:
        return choices(value)
    except ValueError:
        allowed = ", ".join(str(m.value) for m in choices)
        raise error(f"{name}={value!r} is not one of {allowed}") from None


def market_has_p2p(market: str) -> bool:
    """Whether the P2P energy market runs in this market mode."""
    return market in (Market.P2P, Market.MULTI)


def market_has_var(market: str) -> bool:
    """Whether the Var support service runs in this market mode."""
    return market in (Market.VAR, Market.MULTI)


@dataclass(frozen=True)
class SimConfig:
    """One market simulation: network, market mode, policy, protocol, days and seed."""

    network: str = field(
        default="ieee33",
        metadata={"help": "network name (ieee33, swiss161) or path to a pandapower JSON file"},
    )
    market: Market = field(
        default=Market.MULTI,
        metadata={"help": "market mode: grid-only, p2p (P2P only), var (Var only), multi (both)"},
    )
    policy: str = field(
        default="rule",
        metadata={
            "help": "prosumer policy: rule, random, tou (time-of-use rule), optimum (the "
            "perfect-foresight optimum's dispatch, docs/optimum.md), mpc, mpc:FORECASTER "
            "(persistence, seasonal, regression) or mpc-perfect (each prosumer's forecast "
            "MPC, docs/mpc.md), checkpoint:DIR (each prosumer's own actor file DIR/<id>.npz) "
            "or module:factory[@path] (agents.policy_registry)"
        },
    )
    protocol: str = field(
        default="auction",
        metadata={"help": "decentralized P2P clearing protocol", "choices": PROTOCOLS},
    )
    days: int = field(default=1, metadata={"help": "number of days to simulate"})
    day_set: DaySet = field(
        default=DaySet.TEST,
        metadata={"help": "draw days from the held-out test days or training days"},
    )
    first_day: int = field(
        default=0, metadata={"help": "index of the first day within the chosen day set"}
    )
    seed: int = field(default=0, metadata={"help": "seed of the run's random generator"})
    fairness: Fairness = field(
        default=Fairness.EQUAL,
        metadata={"help": "DOE fairness rule (equal, or proportional to PV size)"},
    )
    scenario: str | None = field(
        default=None, metadata={"help": "prosumer scenario JSON file (default: built-in)"}
    )
    var_pricing: VarPricing = field(
        default=VarPricing.EX_POST,
        metadata={
            "help": "Var settlement: ex-post (symmetric, marginal loss at the settled power "
            "flow) or ex-ante (the published price times injected q, for comparison)"
        },
    )
    network_charge_eur_per_kwh: float = field(
        default=DEFAULT_NETWORK_CHARGE_EUR_PER_KWH,
        metadata={"help": "P2P network charge per traded kWh, half paid by each party"},
    )
    envelopes: EnvelopeRule = field(
        default=EnvelopeRule.DYNAMIC,
        metadata={
            "help": "what the DSO publishes as limits: dynamic (operating envelopes from the "
            "power flow), static (a fixed export cap per prosumer) or none (physical maxima)"
        },
    )
    export_cap_kw_per_load_kw: float = field(
        default=DEFAULT_EXPORT_CAP_KW_PER_LOAD_KW,
        metadata={"help": "static rule's export cap, kW per kW of the prosumer's load peak"},
    )
    var_price_scale: float = field(
        default=1.0,
        metadata={"help": "multiplies the Var price (published and settled), >= 0"},
    )
    pv_scale: float = field(
        default=1.0,
        metadata={"help": "multiplies every prosumer's PV kWp (and its inverter), >= 0"},
    )

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            choices = _HINTS[f.name]
            if isinstance(choices, type) and issubclass(choices, Enum):
                object.__setattr__(self, f.name, enum_value(choices, f.name, getattr(self, f.name)))
            registry = f.metadata.get("choices")
            if isinstance(registry, Registry):
                registry.check(getattr(self, f.name), ConfigError)
        parse_policy(self.policy, ConfigError)
        if not isinstance(self.days, int) or self.days < 1:
            raise ConfigError(f"days={self.days!r} must be a positive integer")
        if not isinstance(self.first_day, int) or self.first_day < 0:
            raise ConfigError(f"first_day={self.first_day!r} must be a non-negative integer")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed={self.seed!r} must be a non-negative integer")
        for name in (
            "network_charge_eur_per_kwh",
            "export_cap_kw_per_load_kw",
            "var_price_scale",
            "pv_scale",
        ):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not 0.0 <= value < math.inf
            ):
                raise ConfigError(f"{name}={value!r} must be a finite number >= 0")

    def interval_script(self) -> IntervalScript:
        """The phases of every interval of this run (see :mod:`agents.interval`)."""
        return interval_script(self.protocol, p2p=market_has_p2p(self.market))


_HINTS = typing.get_type_hints(SimConfig)
