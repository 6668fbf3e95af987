"""How much room the time-of-use rule leaves: its held-out cost with hand-made corrections.

Plays all 73 test days of ieee33 ``multi`` (single-day episodes, one world each) in
``MarketVecEnv`` with the ToU rule's batched actions, then with each correction below, and
prints the total prosumer cost, its change against ToU and the DSO's net (EUR). Quoted in
docs/ea-matd3.md (residual policy learning). Run: ``python scripts/tou_headroom.py``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from abm.config import Market, SimConfig
from abm.envs.vec_env import MarketVecEnv

Correction = Callable[[np.ndarray, np.ndarray, int], None]
"""Changes the ToU actions ``[B, N, 4]`` in place, given the observations and the hour."""

BATTERY, TRADE, Q = 0, 1, 3
VAR_PRICE = 11  # observation feature (agents.policy.OBSERVATION_FEATURES)
PEAK_HOURS = range(17, 21)


def _set(column: int, value: Callable[[np.ndarray, np.ndarray, int], np.ndarray]) -> Correction:
    def correct(actions: np.ndarray, obs: np.ndarray, hour: int) -> None:
        actions[..., column] = value(actions, obs, hour)

    return correct


CORRECTIONS: dict[str, Correction] = {
    "q x 0.5": _set(Q, lambda a, o, h: 0.5 * a[..., Q]),
    "q x 0.8": _set(Q, lambda a, o, h: 0.8 * a[..., Q]),
    "q x 1.1": _set(Q, lambda a, o, h: 1.1 * a[..., Q]),
    "q + 0.2 where the Var price > 0": _set(
        Q,
        lambda a, o, h: np.where(o[..., VAR_PRICE] > 0, np.minimum(1, a[..., Q] + 0.2), a[..., Q]),
    ),
    "half-power night charging": _set(
        BATTERY, lambda a, o, h: np.where(a[..., BATTERY] <= -0.999, -0.5, a[..., BATTERY])
    ),
    "full discharge in the peak": _set(
        BATTERY,
        lambda a, o, h: np.full_like(a[..., BATTERY], 1.0) if h in PEAK_HOURS else a[..., BATTERY],
    ),
    "half the net position offered": _set(TRADE, lambda a, o, h: np.zeros_like(a[..., TRADE])),
}


def hour_of(obs: np.ndarray) -> int:
    """The hour of the interval, from the ``hour_sin`` and ``hour_cos`` features."""
    angle = np.arctan2(obs[0, 0, 0], obs[0, 0, 1])
    return int(np.rint(angle * 24 / (2 * np.pi))) % 24


def play(env: MarketVecEnv, correction: Correction | None) -> tuple[float, float]:
    """Total prosumer cost and DSO net over the test days of ToU with ``correction``."""
    obs, _ = env.reset(0, list(env.test_days))
    cost = dso = 0.0
    done = False
    while not done:
        actions = env.baseline_actions("tou")
        if correction is not None:
            correction(actions, obs, hour_of(obs))
        obs, _, rewards, done_worlds, info = env.step(actions)
        cost -= float(rewards.sum())
        dso += float(info["dso_net_eur"].sum())
        done = bool(done_worlds.all())
    return cost, dso


def main() -> None:
    config = SimConfig(network="ieee33", market=Market.MULTI)
    env = MarketVecEnv(len(MarketVecEnv.test_days), config)
    base, dso = play(env, None)
    print(f"tou: cost {base:,.1f} EUR, DSO net {dso:,.1f} EUR")
    for name, correction in CORRECTIONS.items():
        cost, dso = play(env, correction)
        print(f"{name}: cost {cost:,.1f} EUR ({cost - base:+,.1f}), DSO net {dso:,.1f} EUR")


if __name__ == "__main__":
    main()
