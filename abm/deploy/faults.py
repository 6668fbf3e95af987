"""Faults a process injects into itself (tests): what, when, and carrying them out."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from abm.config import enum_value
from abm.deploy.errors import RunSpecError
from abm.deploy.lifecycle import EXIT_CRASH
from messaging.messages import PHASES

#: How long an injected hang sleeps between checks for a signal, s.
HANG_SLICE_S = 0.5


class FaultAction(StrEnum):
    """What an injected :class:`Fault` does."""

    HANG = "hang"
    CRASH = "crash"
    STALL = "stall"
    DROP = "drop"


@dataclass(frozen=True)
class Fault:
    """A fault a process injects into itself (tests): at ``phase`` of ``interval``.

    ``hang``: stop handling messages until killed; ``crash``: exit at once without cleanup;
    ``stall``: sleep ``stall_ms`` and go on; ``drop`` (prosumers): discard every message that
    arrives in the next ``stall_ms``, as if the transport had lost them under overload. A
    prosumer acts when that ``Phase`` arrives, before handling it (``settle``: when its
    ``Settlement`` arrives); the DSO acts once every live prosumer has acked it (``settle``:
    after settling and recording the interval).
    """

    interval: int
    phase: str
    action: FaultAction
    stall_ms: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.interval, bool) or not isinstance(self.interval, int):
            raise RunSpecError(f"fault.interval={self.interval!r} must be an integer")
        if self.phase not in PHASES:
            raise RunSpecError(f"fault.phase={self.phase!r} is not one of {', '.join(PHASES)}")
        action = enum_value(FaultAction, "fault.action", self.action, RunSpecError)
        object.__setattr__(self, "action", action)
        if isinstance(self.stall_ms, bool) or not isinstance(self.stall_ms, int):
            raise RunSpecError(f"fault.stall_ms={self.stall_ms!r} must be an integer")

    def is_due(self, interval: int, phase: str) -> bool:
        """Whether the fault is to act at ``(interval, phase)``."""
        return (self.interval, self.phase) == (interval, phase)


def apply_fault(fault: Fault | None, interval: int, phase: str, flush: Callable[[], None]) -> None:
    """Carry out an injected fault (tests) if it is due at ``(interval, phase)``.

    ``flush`` first sends what the process queued, so the fault acts after its sends.
    ``crash`` exits at once with :data:`EXIT_CRASH`, ``stall`` sleeps ``stall_ms``, ``hang``
    sleeps until the process is killed; ``drop`` is the prosumer loop's to carry out.
    """
    if fault is None or not fault.is_due(interval, phase) or fault.action == FaultAction.DROP:
        return
    flush()
    if fault.action == "crash":
        os._exit(EXIT_CRASH)
    if fault.action == "stall":
        time.sleep(fault.stall_ms / 1000)
        return
    while True:  # hang until killed
        time.sleep(HANG_SLICE_S)
