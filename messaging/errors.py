"""Typed errors of the messaging layer."""


class MessagingError(Exception):
    """Base class of every error raised by messaging/; the CLI prints it as one line."""
