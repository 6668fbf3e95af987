"""Typed errors of the wiring layer (config, scenarios, runners)."""


class AbmError(Exception):
    """Base class of every error raised by abm/; the CLI prints it as one line."""


class ConfigError(AbmError):
    """A configuration value is invalid; the message names the field and the value."""
