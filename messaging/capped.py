"""A list that keeps its first entries and counts the rest (bounded logs of refusals)."""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")

#: Entries an agent keeps in each of its refusal and error logs; later ones are only counted.
MAX_LOG_ENTRIES = 1000


class CappedList(list[T]):
    """A list holding at most ``cap`` entries; :attr:`dropped` counts the appends refused.

    A flood of bad messages makes an agent log one refusal each; this keeps the log (and
    the agent's memory) bounded while still saying how many there were.
    """

    def __init__(self, cap: int = MAX_LOG_ENTRIES) -> None:
        super().__init__()
        self.cap = cap
        self.dropped = 0

    def append(self, item: T) -> None:
        """Append ``item``, or count it in :attr:`dropped` when the list is full."""
        if len(self) < self.cap:
            super().append(item)
        else:
            self.dropped += 1

    @property
    def total(self) -> int:
        """Entries appended so far, kept or dropped."""
        return len(self) + self.dropped
