"""Typed errors of the learners."""

from agents.errors import AgentError


class LearningError(AgentError):
    """Base class of the learners' errors; the message is one line."""


class LearningConfigError(LearningError):
    """A learner or training setting is invalid; the message names the field and the value."""


class CheckpointError(LearningError):
    """A checkpoint is missing, corrupt, truncated or does not match the run resuming it."""
