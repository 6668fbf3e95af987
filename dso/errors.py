"""Typed errors of the grid core (dso/)."""


class DsoError(Exception):
    """Base class of every error raised by dso/; the CLI prints it as one line."""


class NetworkError(DsoError):
    """A network cannot be loaded or is not usable (unknown name, meshed, no slack...)."""


class PowerFlowDidNotConverge(DsoError):
    """The AC power flow did not converge; the message names the scenario(s)."""


class InvalidInput(DsoError):
    """An argument of a dso function has a wrong shape or value; the message names both."""
