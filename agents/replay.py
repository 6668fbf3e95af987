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


def planned_action_parts(
    battery_p_kw: np.ndarray,
    q_inverter_kvar: np.ndarray,
    battery_kw: np.ndarray | float,
    inverter_kva: np.ndarray | float,
) -> tuple[np.ndarray, np.ndarray]:
    """The battery and q components of the actions playing a plan: the battery's power over
    its rating and the inverter's reactive power over its rating, clipped into ``[-1, 1]``
    (0 without a battery or an inverter); arrays of any matching shape (the learners'
    demonstrations play a batch)."""
    battery_kw, inverter_kva = np.asarray(battery_kw, float), np.asarray(inverter_kva, float)
    battery = np.asarray(battery_p_kw, float) / np.where(battery_kw > 0, battery_kw, 1.0)
    q = np.asarray(q_inverter_kvar, float) / np.where(inverter_kva > 0, inverter_kva, 1.0)
    battery = np.where(battery_kw > 0, np.clip(battery, -1.0, 1.0), 0.0)
    return battery, np.where(inverter_kva > 0, np.clip(q, -1.0, 1.0), 0.0)


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
        self.battery, self.q = planned_action_parts(
            battery_p_kw, q_inverter_kvar, battery_kw, inverter_kva
        )
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
