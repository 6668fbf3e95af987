"""The protocol: one frozen dataclass per message kind, with field limits.

Every message starts with the common fields ``sender`` (agent id), ``interval`` and
``seq`` (per-sender increasing). The other fields are declared with ``Annotated`` types
whose metadata is a :class:`FieldSpec`; :func:`messaging.codec.validate` checks a message
against those specs, in-process or after decoding. Adding a kind is one dataclass
deriving from :class:`Message` and decorated with :func:`message_kind`.

Units: money in EUR, energy in kWh, power in kW / kvar; signed powers and energies are
injection (export, sale) positive; settlement amounts are cost to the prosumer positive.
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from collections.abc import Container
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, TypeVar

from messaging.errors import RejectedMessage

#: Version of the wire protocol; bump it on any incompatible change of a kind.
PROTOCOL_VERSION = 2

MAX_PRICE_EUR_PER_KWH = 10.0
MAX_PRICE_EUR_PER_KVARH = 10.0
MAX_QUANTITY_KWH = 1e6
MAX_POWER_KW = 1e6
MAX_MONEY_EUR = 1e9
MAX_VOLTAGE_PU = 10.0
MAX_INTERVAL = 2**31 - 1
MAX_SEQ = 2**63 - 1
MAX_BUS = 2**31 - 1
MAX_ROUND = 2**31 - 1
MAX_TEXT_CHARS = 256
#: Most rows of a table field (one per prosumer of a feeder).
MAX_TABLE_ROWS = 1000

#: Agent ids: letters, digits and ``_ . : -``, 1 to 64 characters.
AGENT_ID_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
#: Trade ids: same alphabet as agent ids, up to 128 characters.
TRADE_ID_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
#: Kind names as they appear in ``Error.refused_kind`` (empty when unknown).
KIND_NAME_PATTERN = re.compile(r"([A-Za-z][A-Za-z0-9_]{0,63})?")

#: Agent id of the DSO (the market clock); every agent addresses it by this id.
DSO_ID = "dso"

#: Market phases the DSO clock opens, in order.
PHASES: tuple[str, ...] = ("open", "orders", "clear", "confirm", "schedule", "settle", "close")
#: Roles an agent can join with.


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """Constraint of one message field; :meth:`problem` returns why a value fails, or ``None``.

    ``base`` is ``int``, ``float``, ``str``, ``bool`` or ``tuple`` (a table). Numbers must
    lie in ``[lo, hi]`` (``lo`` excluded when ``lo_open``); floats must be finite (ints are
    accepted for floats). Strings must fully match ``pattern`` when given, else be at most
    ``MAX_TEXT_CHARS`` long, and be one of ``choices`` when given. A table is a tuple of at
    most :data:`MAX_TABLE_ROWS` rows, each a tuple with one value per ``columns`` spec; the
    first column is the row's key and unique.
    """

    base: type
    lo: float = -math.inf
    hi: float = math.inf
    lo_open: bool = False
    pattern: re.Pattern[str] | None = None
    choices: frozenset[str] | None = None
    columns: tuple[tuple[str, FieldSpec], ...] = ()

    def problem(self, value: Any) -> str | None:
        """Why ``value`` violates this spec, or ``None`` when it is acceptable."""
        base = self.base
        vtype = type(value)
        if base is tuple:
            return self._table_problem(value)
        if base is float:
            if vtype is not float and (vtype is bool or not isinstance(value, int | float)):
                return f"expected float, got {vtype.__name__}"
            if self.lo < value <= self.hi or (value == self.lo and not self.lo_open):
                return None
            if value != value or value in (math.inf, -math.inf):
                return "is not finite"
            return self._range_text()
        if base is int:
            if vtype is not int and (vtype is bool or not isinstance(value, int)):
                return f"expected int, got {vtype.__name__}"
            return None if self.lo <= value <= self.hi else self._range_text()
        if base is bool:
            return None if vtype is bool else f"expected bool, got {vtype.__name__}"
        if vtype is not str:
            return f"expected str, got {vtype.__name__}"
        if self.choices is not None:
            return None if value in self.choices else f"not one of {sorted(self.choices)}"
        if self.pattern is not None:
            return None if self.pattern.fullmatch(value) else "does not match the id pattern"
        if len(value) > MAX_TEXT_CHARS:
            return f"longer than {MAX_TEXT_CHARS} chars"
        return None if value.isascii() or _utf8_ok(value) else "is not valid UTF-8"

    def _table_problem(self, rows: Any) -> str | None:
        if type(rows) is not tuple:
            return f"expected a tuple of rows, got {type(rows).__name__}"
        if len(rows) > MAX_TABLE_ROWS:
            return f"{len(rows)} rows, more than {MAX_TABLE_ROWS}"
        keys: set[object] = set()
        for i, row in enumerate(rows):
            if type(row) is not tuple or len(row) != len(self.columns):
                return f"row {i} is not a tuple of {len(self.columns)} values"
            for (name, spec), cell in zip(self.columns, row, strict=True):
                if isinstance(cell, list | tuple | dict):  # never repr'd: may nest 1,000 deep
                    return f"row {i} {name}: nested data in a table cell"
                problem = spec.problem(cell)
                if problem is not None:
                    return f"row {i} {name}={cell!r:.40}: {problem}"
            if row[0] in keys:
                return f"row {i} {self.columns[0][0]}={row[0]!r}: duplicate"
            keys.add(row[0])
        return None

    def _range_text(self) -> str:
        left = "(" if self.lo_open else "["
        return f"out of range {left}{self.lo:g}, {self.hi:g}]"


def _utf8_ok(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _float(lo: float, hi: float, *, lo_open: bool = False) -> FieldSpec:
    return FieldSpec(float, lo, hi, lo_open)


def _int(lo: int, hi: int) -> FieldSpec:
    return FieldSpec(int, lo, hi)


AgentId = Annotated[str, FieldSpec(str, pattern=AGENT_ID_PATTERN)]
TradeId = Annotated[str, FieldSpec(str, pattern=TRADE_ID_PATTERN)]
KindName = Annotated[str, FieldSpec(str, pattern=KIND_NAME_PATTERN)]
Text = Annotated[str, FieldSpec(str)]
Flag = Annotated[bool, FieldSpec(bool)]
IntervalIndex = Annotated[int, _int(0, MAX_INTERVAL)]
SeqNumber = Annotated[int, _int(0, MAX_SEQ)]
BusIndex = Annotated[int, _int(0, MAX_BUS)]
RoundIndex = Annotated[int, _int(0, MAX_ROUND)]
SignedPowerKw = Annotated[float, _float(-MAX_POWER_KW, MAX_POWER_KW)]
QuantityKwh = Annotated[float, _float(0.0, MAX_QUANTITY_KWH)]
PositiveQuantityKwh = Annotated[float, _float(0.0, MAX_QUANTITY_KWH, lo_open=True)]
SignedEnergyKwh = Annotated[float, _float(-MAX_QUANTITY_KWH, MAX_QUANTITY_KWH)]
PriceEurPerKwh = Annotated[float, _float(0.0, MAX_PRICE_EUR_PER_KWH)]
SignedPriceEurPerKwh = Annotated[float, _float(-MAX_PRICE_EUR_PER_KWH, MAX_PRICE_EUR_PER_KWH)]
SignedPriceEurPerKvarh = Annotated[float, _float(-MAX_PRICE_EUR_PER_KVARH, MAX_PRICE_EUR_PER_KVARH)]
MoneyEur = Annotated[float, _float(-MAX_MONEY_EUR, MAX_MONEY_EUR)]
VoltagePu = Annotated[float, _float(0.0, MAX_VOLTAGE_PU)]


@dataclass(frozen=True, slots=True)
class Message:
    """Base of every message kind: the common fields, first in every kind.

    ``kind`` (the class name) is set by :func:`message_kind`; ``FIELDS`` holds the
    ``(name, spec)`` pairs in wire order.
    """

    kind: ClassVar[str] = ""
    FIELDS: ClassVar[tuple[tuple[str, FieldSpec], ...]] = ()

    sender: AgentId
    interval: IntervalIndex
    seq: SeqNumber


#: A message to send: ``(recipient id, message)``; recipient ``None`` broadcasts to all.
Outgoing = tuple[str | None, Message]

M = TypeVar("M", bound=type[Message])

#: Registered message kinds: kind name -> class.
KINDS: dict[str, type[Message]] = {}


def message_kind(cls: M) -> M:
    """Register a :class:`Message` subclass as a wire kind named after the class."""
    name = cls.__name__
    if name in KINDS:
        raise ValueError(f"message kind {name!r} is already registered")
    hints = typing.get_type_hints(cls, include_extras=True)
    specs = []
    for f in dataclasses.fields(cls):
        meta = [m for m in getattr(hints[f.name], "__metadata__", ()) if isinstance(m, FieldSpec)]
        if len(meta) != 1:
            raise TypeError(f"{name}.{f.name} needs an Annotated type with one FieldSpec")
        specs.append((f.name, meta[0]))
    cls.kind = name
    cls.FIELDS = tuple(specs)
    KINDS[name] = cls
    return cls


@dataclass(frozen=True, slots=True)
class Envelope:
    """One prosumer's dynamic operating envelope for an interval (a row of :class:`Envelopes`).

    Net active injection ``-import_kw <= p_kw <= export_kw``; the inverter's reactive power
    ``q_min_kvar <= q_inverter_kvar <= q_max_kvar`` (``q_min_kvar <= 0 <= q_max_kvar``).
    """

    prosumer: str
    export_kw: float
    import_kw: float
    q_min_kvar: float = 0.0
    q_max_kvar: float = 0.0


#: Columns of an :class:`Envelopes` row, in wire order (the fields of :class:`Envelope`).
ENVELOPE_COLUMNS: tuple[tuple[str, FieldSpec], ...] = (
    ("prosumer", FieldSpec(str, pattern=AGENT_ID_PATTERN)),
    ("export_kw", _float(0.0, MAX_POWER_KW)),
    ("import_kw", _float(0.0, MAX_POWER_KW)),
    ("q_min_kvar", _float(-MAX_POWER_KW, 0.0)),
    ("q_max_kvar", _float(0.0, MAX_POWER_KW)),
)
EnvelopeRows = Annotated[
    tuple[tuple[str, float, float, float, float], ...],
    FieldSpec(tuple, columns=ENVELOPE_COLUMNS),
]


#: The rows of the last :class:`Envelopes` table converted, and their :class:`Envelope`\ s.
_LAST_TABLE: list[Any] = [None, {}]


@message_kind
@dataclass(frozen=True, slots=True)
class Envelopes(Message):
    """The dynamic operating envelopes the DSO grants for one interval, one row per prosumer
    (a public broadcast: every peer checks orders against them)."""

    rows: EnvelopeRows

    def by_prosumer(self) -> dict[str, Envelope]:
        """Each row as an :class:`Envelope`, by prosumer id (a fresh dict; the rows of the
        last table are converted once, as every in-process recipient gets the same one)."""
        rows, mapping = _LAST_TABLE
        if rows is not self.rows:
            mapping = {row[0]: Envelope(*row) for row in self.rows}
            _LAST_TABLE[:] = [self.rows, mapping]
        return dict(mapping)

    def only(self, prosumers: Container[str]) -> Envelopes:
        """The same message with only the rows of ``prosumers``."""
        kept = tuple(row for row in self.rows if row[0] in prosumers)
        return dataclasses.replace(self, rows=kept)


#: Columns of a :class:`VarPrices` row: a bus and its indicative Var price.
VAR_PRICE_COLUMNS: tuple[tuple[str, FieldSpec], ...] = (
    ("bus", _int(0, MAX_BUS)),
    ("price_eur_per_kvarh", _float(-MAX_PRICE_EUR_PER_KVARH, MAX_PRICE_EUR_PER_KVARH)),
)
VarPriceRows = Annotated[tuple[tuple[int, float], ...], FieldSpec(tuple, columns=VAR_PRICE_COLUMNS)]


@message_kind
@dataclass(frozen=True, slots=True)
class VarPrices(Message):
    """Indicative Var support prices of one interval, one row per bus with prosumers (a
    public broadcast; negative: injection would be charged)."""

    rows: VarPriceRows


@message_kind
@dataclass(frozen=True, slots=True)
class Bid(Message):
    """Buy order: up to ``quantity_kwh`` at no more than the limit price."""

    quantity_kwh: QuantityKwh
    limit_price_eur_per_kwh: PriceEurPerKwh


@message_kind
@dataclass(frozen=True, slots=True)
class Offer(Message):
    """Sell order: up to ``quantity_kwh`` at no less than the limit price."""

    quantity_kwh: QuantityKwh
    limit_price_eur_per_kwh: PriceEurPerKwh


@message_kind
@dataclass(frozen=True, slots=True)
class Trade(Message):
    """A proposed or matched P2P trade between ``buyer`` and ``seller``."""

    trade_id: TradeId
    buyer: AgentId
    seller: AgentId
    quantity_kwh: PositiveQuantityKwh
    price_eur_per_kwh: PriceEurPerKwh
    round: RoundIndex


@message_kind
@dataclass(frozen=True, slots=True)
class TradeConfirm(Message):
    """A party's answer to a :class:`Trade` (``accepted`` false rejects it)."""

    trade_id: TradeId
    buyer: AgentId
    seller: AgentId
    quantity_kwh: QuantityKwh
    price_eur_per_kwh: SignedPriceEurPerKwh
    accepted: Flag
    round: RoundIndex


@message_kind
@dataclass(frozen=True, slots=True)
class Schedule(Message):
    """A prosumer's dispatch for the interval (injection / sale positive)."""

    p_kw: SignedPowerKw
    q_kvar: SignedPowerKw
    p2p_net_kwh: SignedEnergyKwh


@message_kind
@dataclass(frozen=True, slots=True)
class Settlement(Message):
    """What the DSO settles for a prosumer's interval: its Var amount (cost to the prosumer
    positive, payment negative) and ``vm_pu``, the voltage of its bus in the DSO's power flow
    (its meter reading). The prosumer computes the rest of its bill (``agents/settlement.py``).
    """

    prosumer: AgentId
    var_eur: MoneyEur
    vm_pu: VoltagePu = 1.0


@message_kind
@dataclass(frozen=True, slots=True)
class Phase(Message):
    """The DSO clock opens ``phase`` (one of :data:`PHASES`).

    ``round`` numbers repeated ticks of a phase (the bilateral protocol's rounds; 0 otherwise).
    """

    phase: Annotated[str, FieldSpec(str, choices=frozenset(PHASES))]
    round: RoundIndex = 0


@message_kind
@dataclass(frozen=True, slots=True)
class Heartbeat(Message):
    """Liveness only: the DSO's while it waits, a prosumer's "alive" answer to a ``Leave``."""


@message_kind
@dataclass(frozen=True, slots=True)
class PhaseAck(Message):
    """A prosumer handled tick ``(phase, round)`` of the DSO's clock and sent its outputs."""

    phase: Annotated[str, FieldSpec(str, choices=frozenset(PHASES))]
    round: RoundIndex = 0


@message_kind
@dataclass(frozen=True, slots=True)
class Join(Message):
    """An agent announces itself (a restarted process: a new incarnation)."""


@message_kind
@dataclass(frozen=True, slots=True)
class Leave(Message):
    """An agent leaves the market."""

    reason: Text


@message_kind
@dataclass(frozen=True, slots=True)
class Absent(Message):
    """The DSO treats ``prosumer`` as absent for the rest of ``interval`` (a broadcast).

    Its peers void every trade of the interval with it and ignore its messages; the DSO
    settles the interval without it.
    """

    prosumer: AgentId


@message_kind
@dataclass(frozen=True, slots=True)
class Error(Message):
    """Refusal of a received message (``refused_seq`` -1 and ``refused_kind`` "" if unknown)."""

    refused_kind: KindName
    refused_seq: Annotated[int, _int(-1, MAX_SEQ)]
    reason: Text


def error_reply(exc: RejectedMessage, *, sender: str, interval: int, seq: int) -> Error:
    """The :class:`Error` message refusing what ``exc`` rejected, from ``sender``."""
    kind = exc.kind if exc.kind and KIND_NAME_PATTERN.fullmatch(exc.kind) else ""
    refused_seq = exc.seq if isinstance(exc.seq, int) and 0 <= exc.seq <= MAX_SEQ else -1
    return Error(sender, interval, seq, kind, refused_seq, exc.reason[:MAX_TEXT_CHARS])
