"""Independent TD3 (ITD3): every prosumer learns TD3 alone with a decentralised critic.

Each prosumer's twin critics see only its own observation and action, so the others are
part of a non-stationary environment: the baseline that shows what centralised critics
buy. Everything else (twin critics, smoothing, delayed actor updates, Polyak averaging,
the batched update of all prosumers) is :class:`agents.learning.matd3.MATD3`.
"""

from __future__ import annotations

import dataclasses

from agents.learning.matd3 import MATD3, MATD3Config


def itd3_config(config: MATD3Config) -> MATD3Config:
    """``config`` with decentralised critics."""
    return dataclasses.replace(config, centralised=False)


class ITD3(MATD3):
    """MATD3's learner with decentralised critics."""

    name = "itd3"
    settings = staticmethod(itd3_config)
