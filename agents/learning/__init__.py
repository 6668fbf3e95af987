"""Learners (MATD3, EA-MATD3, MADDPG, ITD3) and their shared plumbing.

The only package of the project that imports torch. It trains against any environment
that honours :class:`agents.learning.env_protocol.VecMarketEnv`; a trained team is exported
as one torch-free actor file per prosumer (:mod:`agents.actor`).
"""
