"""Typed errors of the multi-process deployment."""

from __future__ import annotations

from abm.errors import AbmError


class DeployError(AbmError):
    """A deployment cannot start, run or finish; the message names what and why."""


class RunSpecError(DeployError):
    """The run spec (agent config file) or a hosts file is invalid; names field and value."""


class PolicySpecError(DeployError):
    """A policy spec cannot be resolved to a policy; names the spec and the reason."""


class RunIncomplete(DeployError):
    """The run ended before its last interval (e.g. the DSO process died)."""


class MarketDidNotRun(DeployError):
    """The run finished but too few prosumers took part for its results to mean anything."""
