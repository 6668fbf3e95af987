"""MADDPG (Lowe et al. 2017): per-prosumer actors, one centralised critic each.

MADDPG is the algorithm MATD3 extends: the same centralised critic on the global state and
all actions, but one critic per prosumer (no clipped double-Q), no target policy smoothing
and an actor update after every critic update. It therefore runs
:class:`agents.learning.matd3.MATD3` with those three features switched off, so that
the comparison isolates them; every other setting is MATD3's.
"""

from __future__ import annotations

import dataclasses

from agents.learning.matd3 import MATD3, MATD3Config


def maddpg_config(config: MATD3Config) -> MATD3Config:
    """``config`` with MADDPG's single critic, no smoothing, no delay."""
    return dataclasses.replace(config, n_critics=1, target_noise=0.0, policy_delay=1)


class MADDPG(MATD3):
    """MATD3's learner with MADDPG's settings."""

    name = "maddpg"
    settings = staticmethod(maddpg_config)
