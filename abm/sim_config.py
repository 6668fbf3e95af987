"""The configuration of one market simulation run (``p2pvar simulate``, the PettingZoo env)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from abm.errors import ConfigError
from agents.interval import IntervalScript, interval_script

Market = Literal["grid-only", "p2p", "var", "multi"]
Protocol = Literal["auction", "bilateral"]
PolicyName = Literal["rule", "random"]
VarPricing = Literal["ex-ante", "ex-post"]

MARKETS: tuple[str, ...] = ("grid-only", "p2p", "var", "multi")
PROTOCOLS: tuple[str, ...] = ("auction", "bilateral")
POLICIES: tuple[str, ...] = ("rule", "random")
VAR_PRICINGS: tuple[str, ...] = ("ex-ante", "ex-post")
#: Default P2P network charge, EUR/kWh (its source: ``docs/market.md``).
DEFAULT_NETWORK_CHARGE_EUR_PER_KWH = 0.03


def market_has_p2p(market: str) -> bool:
    """Whether the P2P energy market runs in this market mode."""
    return market in ("p2p", "multi")


def market_has_var(market: str) -> bool:
    """Whether the Var support service runs in this market mode."""
    return market in ("var", "multi")


@dataclass(frozen=True)
class SimConfig:
    """One market simulation: network, market mode, policy, protocol, days and seed."""

    network: str = field(
        default="ieee33",
        metadata={"help": "network name (ieee33, swiss161) or path to a pandapower JSON file"},
    )
    market: Market = field(
        default="multi",
        metadata={"help": "market mode: grid-only, p2p (P2P only), var (Var only), multi (both)"},
    )
    policy: PolicyName = field(default="rule", metadata={"help": "prosumer policy"})
    protocol: Protocol = field(
        default="auction", metadata={"help": "decentralized P2P clearing protocol"}
    )
    days: int = field(default=1, metadata={"help": "number of days to simulate"})
    day_set: Literal["test", "train"] = field(
        default="test", metadata={"help": "draw days from the held-out test days or training days"}
    )
    first_day: int = field(
        default=0, metadata={"help": "index of the first day within the chosen day set"}
    )
    seed: int = field(default=0, metadata={"help": "seed of the run's random generator"})
    fairness: Literal["equal", "proportional"] = field(
        default="equal", metadata={"help": "DOE fairness rule (equal, or proportional to PV size)"}
    )
    scenario: str | None = field(
        default=None, metadata={"help": "prosumer scenario JSON file (default: built-in)"}
    )
    var_pricing: VarPricing = field(
        default="ex-post",
        metadata={
            "help": "Var settlement: ex-post (symmetric, marginal loss at the settled power "
            "flow) or ex-ante (the published price times injected q, for comparison)"
        },
    )
    network_charge_eur_per_kwh: float = field(
        default=DEFAULT_NETWORK_CHARGE_EUR_PER_KWH,
        metadata={"help": "P2P network charge per traded kWh, half paid by each party"},
    )

    def __post_init__(self) -> None:
        checks = (
            ("market", self.market, MARKETS),
            ("protocol", self.protocol, PROTOCOLS),
            ("policy", self.policy, POLICIES),
            ("day_set", self.day_set, ("test", "train")),
            ("fairness", self.fairness, ("equal", "proportional")),
            ("var_pricing", self.var_pricing, VAR_PRICINGS),
        )
        for name, value, allowed in checks:
            if value not in allowed:
                raise ConfigError(f"{name}={value!r} is not one of {', '.join(allowed)}")
        if not isinstance(self.days, int) or self.days < 1:
            raise ConfigError(f"days={self.days!r} must be a positive integer")
        if not isinstance(self.first_day, int) or self.first_day < 0:
            raise ConfigError(f"first_day={self.first_day!r} must be a non-negative integer")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed={self.seed!r} must be a non-negative integer")
        charge = self.network_charge_eur_per_kwh
        if (
            isinstance(charge, bool)
            or not isinstance(charge, int | float)
            or not 0.0 <= charge < math.inf
        ):
            raise ConfigError(f"network_charge_eur_per_kwh={charge!r} must be a finite number >= 0")

    def interval_script(self) -> IntervalScript:
        """The phases of every interval of this run (see :mod:`agents.interval`)."""
        return interval_script(self.protocol, p2p=market_has_p2p(self.market))
