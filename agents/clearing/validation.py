"""Checks every peer applies to what it receives: field limits and public envelopes.

Envelopes are public (the DSO broadcasts one ``Envelopes`` table with every prosumer's row),
so every peer can check every order: an ``Offer`` may sell at most ``export_kw *
duration_h`` kWh and a ``Bid`` (or a bilateral ``Trade`` request) may buy at most
``import_kw * duration_h`` kWh, each with a tolerance of :data:`ENVELOPE_TOLERANCE_KWH`. A
sender without an envelope this interval is not a known prosumer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Literal

from agents.clearing.errors import InvalidOrder, OutsideEnvelope, UnknownSender
from messaging.codec import validate
from messaging.errors import RejectedMessage
from messaging.messages import Envelope, Message

#: Slack on envelope checks, kWh (absorbs float rounding of ``limit_kw * duration_h``).
ENVELOPE_TOLERANCE_KWH = 1e-9

Direction = Literal["export", "import"]


def check_fields(msg: Message) -> None:
    """Raise :class:`InvalidOrder` when a field of ``msg`` breaks its limits (NaN, range, type)."""
    try:
        validate(msg)
    except RejectedMessage as exc:
        raise InvalidOrder(f"{type(msg).__name__}: {exc}") from exc


def check_duration_h(duration_h: float) -> None:
    """Raise :class:`InvalidOrder` unless the interval duration is finite and positive."""
    if not (isinstance(duration_h, int | float) and math.isfinite(duration_h) and duration_h > 0):
        raise InvalidOrder(f"duration_h={duration_h!r} is not a finite positive number")


def envelope_limit_kwh(envelope: Envelope, direction: Direction, duration_h: float) -> float:
    """Most energy the envelope lets its prosumer export or import in one interval, kWh."""
    limit_kw = envelope.export_kw if direction == "export" else envelope.import_kw
    return limit_kw * duration_h


def check_within_envelope(
    prosumer: str,
    quantity_kwh: float,
    direction: Direction,
    envelopes: Mapping[str, Envelope],
    duration_h: float,
    what: str | Callable[[], str],
) -> None:
    """Raise :class:`UnknownSender` or :class:`OutsideEnvelope` for ``prosumer``'s quantity.

    ``what`` names the checked message in the error text (e.g. ``"Offer seq=4"``), or makes
    that name: it is formatted only for an error (every peer checks every order).
    """
    envelope = envelopes.get(prosumer)
    if envelope is None:
        raise UnknownSender(f"{_text(what)}: sender={prosumer!r} has no envelope this interval")
    limit_kwh = envelope_limit_kwh(envelope, direction, duration_h)
    if quantity_kwh > limit_kwh + ENVELOPE_TOLERANCE_KWH:
        raise OutsideEnvelope(
            f"{_text(what)} from {prosumer!r}: quantity_kwh={quantity_kwh!r} exceeds the "
            f"{direction} envelope {limit_kwh!r} kWh"
        )


def order_name(order: Message) -> str:
    """An order's name in an error text, e.g. ``"Offer seq=4 from 'p01'"`` (called only for
    an error: every peer checks every order, so formatting it up front costs)."""
    return f"{order.kind} seq={order.seq} from {order.sender!r}"


def _text(what: str | Callable[[], str]) -> str:
    return what if isinstance(what, str) else what()
