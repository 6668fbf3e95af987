"""Exit statuses of agent processes and their signal handling."""

from __future__ import annotations

import os
import signal
import time
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from abm.deploy.spec import Fault

EXIT_OK = 0
#: A prosumer stopped because the DSO fell silent (it died or the network split).
EXIT_DSO_LOST = 3
#: The DSO stopped because no prosumer joined in time.
EXIT_NO_PROSUMERS = 4
#: An injected crash (tests).
EXIT_CRASH = 70
#: Stopped by SIGTERM or SIGINT (128 + SIGTERM).
EXIT_TERMINATED = 143
#: How long an injected hang sleeps between checks for a signal, s.
HANG_SLICE_S = 0.5


class Terminated(Exception):
    """Raised in the main thread when the process is asked to stop (SIGTERM, SIGINT)."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signal.Signals(signum).name)


def install_signal_handlers() -> None:
    """Turn SIGTERM and SIGINT into :class:`Terminated`, so ``finally`` blocks clean up."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _raise_terminated)


def apply_fault(fault: Fault | None, interval: int, phase: str) -> None:
    """Carry out an injected fault (tests) if it is due at ``(interval, phase)``.

    ``crash`` exits at once with :data:`EXIT_CRASH`, ``stall`` sleeps ``stall_ms``, ``hang``
    sleeps until the process is killed.
    """
    if fault is None or (fault.interval, fault.phase) != (interval, phase):
        return
    if fault.action == "crash":
        os._exit(EXIT_CRASH)
    if fault.action == "stall":
        time.sleep(fault.stall_ms / 1000)
        return
    while True:  # hang until killed
        time.sleep(HANG_SLICE_S)
