"""Exit statuses of agent processes and their signal handling."""

from __future__ import annotations

import signal
from types import FrameType

EXIT_OK = 0
#: A prosumer stopped because the DSO fell silent (it died or the network split).
EXIT_DSO_LOST = 3
#: The DSO stopped because no prosumer joined in time.
EXIT_NO_PROSUMERS = 4
#: An injected crash (tests).
EXIT_CRASH = 70
#: Stopped by SIGTERM or SIGINT (128 + SIGTERM).
EXIT_TERMINATED = 143


class Terminated(Exception):
    """Raised in the main thread when the process is asked to stop (SIGTERM, SIGINT)."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signal.Signals(signum).name)


def install_signal_handlers() -> None:
    """Turn SIGTERM and SIGINT into :class:`Terminated`, so ``finally`` blocks clean up."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _raise_terminated)
