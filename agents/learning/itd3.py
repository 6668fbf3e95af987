"""Independent TD3 (ITD3): every prosumer learns TD3 alone with a decentralised critic.

Each prosumer's twin critics see only its own observation and action, so the others are
part of a non-stationary environment: the baseline that shows what centralised critics
buy. Everything else (twin critics, smoothing, delayed actor updates, Polyak averaging,
the batched update of all prosumers) is :class:`agents.learning.matd3.MATD3`.
"""

from __future__ import annotations

import dataclasses

import torch

from agents.learning.env_protocol import EnvDims
from agents.learning.matd3 import MATD3, MATD3Config


def itd3_config(base: MATD3Config | None = None) -> MATD3Config:
    """``base`` (default: MATD3's defaults) with decentralised critics."""
    return dataclasses.replace(base or MATD3Config(), centralised=False)


class ITD3(MATD3):
    """MATD3's learner with decentralised critics."""

    name = "itd3"

    def __init__(
        self, dims: EnvDims, config: MATD3Config | None, generator: torch.Generator
    ) -> None:
        super().__init__(dims, itd3_config(config), generator)
