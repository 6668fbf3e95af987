"""Battery model of a prosumer: power and energy limits, one-way efficiency.

Sign convention (project-wide): ``p_kw > 0`` is injection into the bus, so a positive
battery power is *discharging* and a negative one is *charging*.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Battery:
    """A battery behind the prosumer's inverter (capacity 0 means none)."""

    capacity_kwh: float
    power_kw: float
    efficiency: float  # one-way, applied on charge and on discharge

    def feasible_p_kw(self, p_kw: float, soc_kwh: float, duration_h: float) -> float:
        """Clip a requested injection to the power rating and the energy in/room of the battery."""
        if self.capacity_kwh <= 0.0 or self.power_kw <= 0.0:
            return 0.0
        max_discharge_kw = soc_kwh * self.efficiency / duration_h
        max_charge_kw = (self.capacity_kwh - soc_kwh) / (self.efficiency * duration_h)
        upper = min(self.power_kw, max(0.0, max_discharge_kw))
        lower = -min(self.power_kw, max(0.0, max_charge_kw))
        return min(max(p_kw, lower), upper)

    def next_soc_kwh(self, soc_kwh: float, p_kw: float, duration_h: float) -> float:
        """State of charge after injecting ``p_kw`` (already feasible) for ``duration_h``."""
        if p_kw >= 0.0:
            soc = soc_kwh - p_kw * duration_h / self.efficiency
        else:
            soc = soc_kwh - p_kw * duration_h * self.efficiency
        return min(max(soc, 0.0), self.capacity_kwh)
