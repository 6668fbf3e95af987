"""Learners (MATD3, EA-MATD3, MADDPG, ITD3) and their shared plumbing.

The only package of the project that imports torch. It trains against any environment
that honours :class:`agents.learning.env_protocol.VecMarketEnv`; a trained team is exported
as one torch-free actor file per prosumer (:mod:`agents.actor`).
"""

from agents.learning.errors import LearningError

#: How to install what training needs (the ``train`` extra of ``pyproject.toml``).
INSTALL_TRAIN = "pip install -e '.[train]'"

try:
    import torch  # noqa: F401 - every learner needs it; checked once, here
except ImportError:
    raise LearningError(f"training needs torch, which is not installed: {INSTALL_TRAIN}") from None
