"""A policy that plays a planned dispatch (the perfect-foresight optimum's, ``abm.optimum.lp``).

Each call to :meth:`ReplayPolicy.act` plays the plan's next interval (the prosumer asks its
policy once per interval): the battery power and the inverter's reactive power as the
normalised action, with the whole net position offered at the truthful price
(:func:`agents.policy.truthful_action`): every crossing kWh then trades, which is what the
plan counts on. The plan goes through the same projection as any action
(:mod:`agents.plan`), so the envelopes and ratings hold whatever it says. Torch-free.
"""

from __future__ import annotations

import numpy as np

from agents.policy import InvalidAction, Observation, truthful_action


class ReplayPolicy:
    """Plays ``battery_p_kw`` and ``q_inverter_kvar`` (one entry per run interval) in order."""

    def __init__(
        self,
        battery_p_kw: np.ndarray,
        q_inverter_kvar: np.ndarray,
        *,
        battery_kw: float,
        inverter_kva: float,
    ) -> None:
        battery = np.asarray(battery_p_kw, dtype=float) / battery_kw if battery_kw > 0 else None
        q = np.asarray(q_inverter_kvar, dtype=float) / inverter_kva if inverter_kva > 0 else None
        n = len(battery_p_kw)
        self.battery = np.zeros(n) if battery is None else np.clip(battery, -1.0, 1.0)
        self.q = np.zeros(n) if q is None else np.clip(q, -1.0, 1.0)
        self.next_interval = 0

    def act(self, obs: Observation) -> np.ndarray:
        """The plan's next interval as an action."""
        t = self.next_interval
        if t >= len(self.battery):
            raise InvalidAction(
                f"the replayed plan has {len(self.battery)} intervals, asked for {t + 1}"
            )
        self.next_interval += 1
        return truthful_action(float(self.battery[t]), float(self.q[t]))
