"""The script of one market interval: the one list of phases every market clock runs.

An interval is ``open`` (the DSO publishes envelopes and Var prices), then the ticks
``("orders", 0)``, the clearing protocol's ticks (none without a P2P market) and
``("schedule", 0)``, acked by the prosumers but for the protocol's silent ticks (the
auction's ``clear``), then ``settle`` (power flow and settlements). The Mesa model
(:class:`abm.sim.model.MarketModel`), the DSO process's clock, the launcher's run timeout and
the training environments all read the script from :func:`interval_script`.
"""

from __future__ import annotations

from dataclasses import dataclass

from agents.clearing import DEFAULT_ROUNDS, ProtocolName, Tick, clearing_ticks, silent_ticks

#: Intervals per training episode (one day of hourly intervals); torch-free, so that the
#: vectorised environment and the learners read the same number.
EPISODE_INTERVALS = 24

OPEN = "open"
ORDERS = "orders"
SCHEDULE = "schedule"
SETTLE = "settle"


@dataclass(frozen=True)
class IntervalScript:
    """``open``, then every tick of :attr:`ticks`, then ``settle``.

    The prosumers ack every tick but the :attr:`silent` ones (at which they send nothing): a
    multi-process clock waits for the acks of a tick before it opens the next one.
    """

    ticks: tuple[Tick, ...]
    silent: frozenset[Tick] = frozenset()

    def acked(self, tick: Tick) -> bool:
        """Whether the prosumers ack ``tick`` (and a clock waits for them)."""
        return tick not in self.silent

    @property
    def phases(self) -> tuple[str, ...]:
        """Every phase of the interval in order, rounds repeated."""
        return (OPEN, *(name for name, _ in self.ticks), SETTLE)

    @property
    def n_deadline_phases(self) -> int:
        """Phases a clock may wait out to their deadline: the ticks and the opening wait."""
        return len(self.ticks) + 1


def interval_script(
    protocol: ProtocolName, *, p2p: bool, rounds: int = DEFAULT_ROUNDS
) -> IntervalScript:
    """The script of an interval with clearing ``protocol`` (only run when ``p2p``)."""
    clearing = clearing_ticks(protocol, rounds) if p2p else ()
    silent = silent_ticks(protocol) if p2p else frozenset()
    return IntervalScript(((ORDERS, 0), *clearing, (SCHEDULE, 0)), silent)
