"""MADDPG (Lowe et al. 2017): per-prosumer actors, one centralised critic each.

MADDPG is the algorithm MATD3 extends: the same centralised critic on the global state and
all actions, but one critic per prosumer (no clipped double-Q), no target policy smoothing
and an actor update after every critic update. It therefore runs
:class:`agents.learning.matd3.MATD3` with those three features switched off, so that
the comparison isolates them; every other setting is MATD3's.
"""

from __future__ import annotations

import dataclasses

import torch

from agents.learning.env_protocol import EnvDims
from agents.learning.matd3 import MATD3, MATD3Config

#: What makes MATD3 into MADDPG.
MADDPG_SETTINGS = {"n_critics": 1, "target_noise": 0.0, "policy_delay": 1}


def maddpg_config(base: MATD3Config | None = None) -> MATD3Config:
    """``base`` (default: MATD3's defaults) with MADDPG's single critic, no smoothing, no delay."""
    return dataclasses.replace(base or MATD3Config(), **MADDPG_SETTINGS)


class MADDPG(MATD3):
    """MATD3's learner with MADDPG's settings."""

    name = "maddpg"

    def __init__(
        self, dims: EnvDims, config: MATD3Config | None, generator: torch.Generator
    ) -> None:
        super().__init__(dims, maddpg_config(config), generator)
