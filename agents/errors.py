"""Typed errors of the agent logic and learners."""


class AgentError(Exception):
    """Base class of every error raised by agents/; the CLI prints it as one line."""
