"""Battery model of a prosumer: power and energy limits, one-way efficiency.

Sign convention (project-wide): ``p_kw > 0`` is injection into the bus, so a positive
battery power is *discharging* and a negative one is *charging*. The rules are array
functions (any shape: prosumers, or worlds x prosumers); :class:`Battery` holds the sizes of one
battery (numbers) or of a batch (arrays).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic

from agents.arrays import F, Floats, namespace


def feasible_battery_p_kw(
    p_kw: Floats,
    soc_kwh: Floats,
    capacity_kwh: Floats,
    power_kw: Floats,
    efficiency: Floats,
    duration_h: float,
) -> Floats:
    """Clip requested injections to the power rating and the energy in/room of the battery
    (0 where there is no battery: capacity or power 0)."""
    xp = namespace(p_kw, soc_kwh, capacity_kwh, power_kw, efficiency)
    max_discharge_kw = soc_kwh * efficiency / duration_h
    max_charge_kw = (capacity_kwh - soc_kwh) / (efficiency * duration_h)
    upper = xp.minimum(power_kw, xp.maximum(0.0, max_discharge_kw))
    lower = -xp.minimum(power_kw, xp.maximum(0.0, max_charge_kw))
    clipped = xp.minimum(xp.maximum(p_kw, lower), upper)
    return xp.where((capacity_kwh > 0.0) & (power_kw > 0.0), clipped, 0.0)


def next_soc_kwh(
    soc_kwh: Floats,
    p_kw: Floats,
    capacity_kwh: Floats,
    efficiency: Floats,
    duration_h: float,
) -> Floats:
    """State of charge after injecting ``p_kw`` (already feasible) for ``duration_h``."""
    xp = namespace(soc_kwh, p_kw, capacity_kwh, efficiency)
    discharged = soc_kwh - p_kw * duration_h / efficiency
    charged = soc_kwh - p_kw * duration_h * efficiency
    soc = xp.where(p_kw >= 0.0, discharged, charged)
    return xp.minimum(xp.maximum(soc, 0.0), capacity_kwh)


@dataclass(frozen=True)
class Battery(Generic[F]):
    """A battery behind the prosumer's inverter (capacity 0 means none), or the batteries of
    a batch (arrays)."""

    capacity_kwh: F
    power_kw: F
    efficiency: F  # one-way, applied on charge and on discharge

    def feasible_p_kw(self, p_kw: float, soc_kwh: float, duration_h: float) -> float:
        """:func:`feasible_battery_p_kw` of this battery."""
        return float(
            feasible_battery_p_kw(
                p_kw, soc_kwh, self.capacity_kwh, self.power_kw, self.efficiency, duration_h
            )
        )

    def next_soc_kwh(self, soc_kwh: float, p_kw: float, duration_h: float) -> float:
        """:func:`next_soc_kwh` of this battery."""
        return float(next_soc_kwh(soc_kwh, p_kw, self.capacity_kwh, self.efficiency, duration_h))
