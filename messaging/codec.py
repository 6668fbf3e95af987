"""Messages to wire frames and back, and validation of in-process messages.

A message travels as one frame (one ZeroMQ frame less per hop than a separate header):

* header: protocol version (uint16, big endian), send time (uint64 ns since the epoch,
  ``time.time_ns``), length of the kind name (uint8), the kind name in ASCII;
* payload: a msgpack array of the field values in declaration order.

The send time lives in the header, not in the dataclass, so latency can be measured
without touching the protocol. Decoding never trusts its input: every problem raises a
:class:`messaging.errors.RejectedMessage` subclass naming the field and the value.
"""

from __future__ import annotations

import re
import struct
import time
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any

import msgpack

from messaging.errors import (
    InvalidMessage,
    MalformedFrame,
    ProtocolVersionError,
    UnknownKind,
)
from messaging.messages import (
    AGENT_ID_PATTERN,
    KINDS,
    MAX_SEQ,
    MAX_TABLE_ROWS,
    MAX_TEXT_CHARS,
    PROTOCOL_VERSION,
    FieldSpec,
    Message,
)

#: Longest value repr quoted in an error message, characters.
MAX_QUOTED_CHARS = 80

#: Header: protocol version (uint16), send time (uint64 ns), kind name length (uint8).
_HEADER = struct.Struct("!HQB")
HEADER_FIXED_BYTES = _HEADER.size

_pack = msgpack.Packer(use_bin_type=True).pack

#: Bytes of the longest msgpack encoding of a number (float 64 or (u)int 64, with its tag).
_NUMBER_BYTES = 9
#: Most UTF-8 bytes per character of a free text field.
_UTF8_MAX_BYTES = 4


def _largest_value_bytes(spec: FieldSpec) -> int:
    """Bytes of the longest msgpack encoding of a value ``spec`` accepts."""
    if spec.base is tuple:  # a table: MAX_TABLE_ROWS rows, every cell at its longest
        row = len(_pack([None] * len(spec.columns))) - len(spec.columns)
        row += sum(_largest_value_bytes(column) for _, column in spec.columns)
        return len(_pack([None] * MAX_TABLE_ROWS)) - MAX_TABLE_ROWS + MAX_TABLE_ROWS * row
    if spec.base in (int, float):
        return _NUMBER_BYTES
    if spec.base is bool:
        return 1
    if spec.choices is not None:
        chars = max(len(c) for c in spec.choices)
    elif spec.pattern is not None:
        chars = _pattern_max_chars(spec.pattern)
    else:
        chars = MAX_TEXT_CHARS * _UTF8_MAX_BYTES
    return len(_pack("x" * chars))


def _pattern_max_chars(pattern: re.Pattern[str]) -> int:
    """An upper bound of the length of a string ``pattern`` matches.

    The sum of its ``{m,n}`` bounds plus its own length (which bounds the characters
    matched outside those quantifiers); a pattern without a bound cannot size a frame.
    """
    bounds = [int(n) for n in re.findall(r"\{\d*,(\d+)\}", pattern.pattern)]
    if not bounds or any(q in pattern.pattern for q in "*+"):
        raise TypeError(f"pattern {pattern.pattern!r}: no length bound to size frames by")
    return sum(bounds) + len(pattern.pattern)


def largest_frame_bytes() -> int:
    """An upper bound of the bytes of the largest legal frame of any registered kind."""
    largest = 0
    for name, cls in KINDS.items():
        payload = len(_pack([None] * len(cls.FIELDS))) - len(cls.FIELDS)  # array header
        payload += sum(_largest_value_bytes(spec) for _, spec in cls.FIELDS)
        largest = max(largest, HEADER_FIXED_BYTES + len(name.encode("ascii")) + payload)
    return largest


#: Largest frame accepted, bytes: the largest legal message (every field at its longest).
#: Sockets refuse anything bigger before reading it (``ZMQ_MAXMSGSIZE``); decoding too.
MAX_FRAME_BYTES = largest_frame_bytes()


def _plain_test(spec: FieldSpec, var: str, env: dict[str, Any]) -> str:
    """A Python expression true when ``var`` plainly satisfies ``spec`` (exact types)."""
    env[f"{var}_spec"] = spec
    if spec.base is float:
        lower = "<" if spec.lo_open else "<="
        return f"(type({var}) is float and {var}_spec.lo {lower} {var} <= {var}_spec.hi)"
    if spec.base is int:
        return f"(type({var}) is int and {var}_spec.lo <= {var} <= {var}_spec.hi)"
    if spec.base is bool:
        return f"type({var}) is bool"
    if spec.base is tuple:
        env[f"{var}_table"] = _compile_plain_table(spec)
        return f"{var}_table({var})"
    if spec.choices is not None:
        return f"(type({var}) is str and {var} in {var}_spec.choices)"
    if spec.pattern is not None:
        env[f"{var}_match"] = spec.pattern.fullmatch
        return f"(type({var}) is str and {var}_match({var}) is not None)"
    return f"(type({var}) is str and len({var}) <= {MAX_TEXT_CHARS} and {var}.isascii())"


def _compile_plain_check(specs: tuple[tuple[str, FieldSpec], ...]) -> Callable[..., bool]:
    """One generated function testing all fields at once (as dataclasses generates __init__).

    True means every value is plainly valid; False sends the caller to the per-field check,
    which finds the bad field or accepts what the plain test is too strict for (ints in
    float fields, float subclasses, non-ASCII text).
    """
    env: dict[str, Any] = {}
    names = [f"v{i}" for i in range(len(specs))]
    tests = " and ".join(
        _plain_test(spec, var, env) for (_, spec), var in zip(specs, names, strict=True)
    )
    source = f"def plain(values):\n    {', '.join(names)}, = values\n    return {tests}\n"
    exec(source, env)
    return env["plain"]


def _compile_plain_table(spec: FieldSpec) -> Callable[[Any], bool]:
    """The plain test of a table: a tuple of rows, each plainly valid, keys unique."""
    row_plain = _compile_plain_check(spec.columns)
    width = len(spec.columns)

    def plain(rows: Any) -> bool:
        return (
            type(rows) is tuple
            and len(rows) <= MAX_TABLE_ROWS
            and all(type(row) is tuple and len(row) == width and row_plain(row) for row in rows)
            and len({row[0] for row in rows}) == len(rows)
        )

    return plain


class _Codec:
    """Per-kind precomputed pieces: getter of the values, specs, plain check, float positions."""

    __slots__ = (
        "cls",
        "float_positions",
        "getter",
        "kind_tag",
        "names",
        "plain",
        "specs",
        "table_positions",
        "tag_len",
    )

    def __init__(self, cls: type[Message]) -> None:
        self.cls = cls
        self.names = tuple(name for name, _ in cls.FIELDS)
        self.specs = cls.FIELDS
        self.getter = attrgetter(*self.names)
        self.kind_tag = cls.kind.encode("ascii")
        self.tag_len = len(self.kind_tag)
        self.float_positions = tuple(
            i for i, (_, spec) in enumerate(cls.FIELDS) if spec.base is float
        )
        self.table_positions = tuple(
            (i, tuple(c.base is float for _, c in spec.columns))
            for i, (_, spec) in enumerate(cls.FIELDS)
            if spec.base is tuple
        )
        self.plain = _compile_plain_check(cls.FIELDS)


_BY_CLASS: dict[type, _Codec] = {}
_BY_TAG: dict[bytes, _Codec] = {}


def _codec_for(cls: type) -> _Codec:
    codec = _BY_CLASS.get(cls)
    if codec is None:
        if KINDS.get(getattr(cls, "kind", "")) is not cls:
            raise UnknownKind(f"kind: {cls.__name__!r} is not a registered message kind")
        codec = _BY_CLASS[cls] = _Codec(cls)
        _BY_TAG[codec.kind_tag] = codec
    return codec


#: Container types msgpack decodes to; none is ever quoted in full.
_CONTAINERS = (list, dict, tuple)


def _quote(value: Any) -> str:
    """A short text of ``value``; containers by type and size, never by (recursive) repr."""
    if isinstance(value, _CONTAINERS):
        return f"<{type(value).__name__} of {len(value)} items>"
    text = repr(value)
    return text if len(text) <= MAX_QUOTED_CHARS else text[: MAX_QUOTED_CHARS - 3] + "..."


def _context(values: Sequence[Any]) -> tuple[str | None, int | None]:
    """Sender and seq of a (possibly bad) value list, where they look sane."""
    sender = values[0] if len(values) > 0 else None
    seq = values[2] if len(values) > 2 else None
    good_sender = type(sender) is str and AGENT_ID_PATTERN.fullmatch(sender) is not None
    good_seq = type(seq) is int and 0 <= seq <= MAX_SEQ
    return (sender if good_sender else None), (seq if good_seq else None)


def _check(codec: _Codec, values: Sequence[Any]) -> bool:
    """Raise on the first bad field; return whether the values were plainly valid."""
    if codec.plain(values):
        return True
    for (name, spec), value in zip(codec.specs, values, strict=True):
        # A scalar field holding a container (msgpack nests arrays up to 1,023 deep) is
        # refused by its type alone, never quoted or walked recursively; a table's rows
        # were made tuples one level deep and its cells are checked as scalars.
        nested = isinstance(value, _CONTAINERS) and spec.base is not tuple
        problem = "nested data in a scalar field" if nested else spec.problem(value)
        if problem is not None:
            sender, seq = _context(values)
            raise InvalidMessage(
                f"{codec.cls.kind}.{name}={_quote(value)}: {problem}",
                kind=codec.cls.kind,
                sender=sender,
                seq=seq,
                field=name,
                value=_quote(value) if nested else value,
            )
    return False


def validate(msg: Message) -> Message:
    """Check every field of ``msg`` against its spec; return ``msg`` or raise.

    Raises :class:`UnknownKind` for an object that is not a registered kind and
    :class:`InvalidMessage` naming the first bad field and its value.
    """
    codec = _codec_for(type(msg))
    _check(codec, _values(codec, msg))
    return msg


def _values(codec: _Codec, msg: Message) -> tuple[Any, ...]:
    values = codec.getter(msg)
    return values if type(values) is tuple else (values,)


def encode(msg: Message, send_ns: int | None = None) -> bytes:
    """Validate ``msg`` and return its frame (header and msgpack payload)."""
    codec = _codec_for(type(msg))
    values = _values(codec, msg)
    _check(codec, values)
    stamp = time.time_ns() if send_ns is None else send_ns
    return _HEADER.pack(PROTOCOL_VERSION, stamp, codec.tag_len) + codec.kind_tag + _pack(values)


def decode(frame: bytes) -> Message:
    """A frame to a validated message; raise a typed error otherwise."""
    return decode_frame(frame)[1]


def decode_frame(frame: bytes) -> tuple[int, Message]:
    """Like :func:`decode` but also return the send time (ns) from the header."""
    if type(frame) is not bytes:
        if not isinstance(frame, bytes | bytearray | memoryview):
            raise MalformedFrame(f"frame: expected bytes, got {type(frame).__name__}")
        frame = bytes(frame)
    size = len(frame)
    if size > MAX_FRAME_BYTES:
        raise MalformedFrame(f"frame: {size} bytes exceeds {MAX_FRAME_BYTES}", value=size)
    if size < HEADER_FIXED_BYTES:
        raise MalformedFrame(f"frame: {size} bytes is shorter than a header", value=size)
    version, send_ns, tag_len = _HEADER.unpack_from(frame)
    if version != PROTOCOL_VERSION:
        raise ProtocolVersionError(
            f"version: {version} is not supported (expected {PROTOCOL_VERSION})",
            field="version",
            value=version,
        )
    end = HEADER_FIXED_BYTES + tag_len
    codec = _BY_TAG.get(frame[HEADER_FIXED_BYTES:end])
    if codec is None:
        codec = _codec_for_tag(frame[HEADER_FIXED_BYTES:end])
    return send_ns, _decode_payload(codec, frame[end:])


def _codec_for_tag(tag: bytes) -> _Codec:
    name = tag.decode("ascii", "replace")
    cls = KINDS.get(name)
    if cls is None:
        raise UnknownKind(
            f"kind: {_quote(name)} is not one of {sorted(KINDS)}", field="kind", value=name
        )
    return _codec_for(cls)


def _decode_payload(codec: _Codec, payload: bytes) -> Message:
    kind = codec.cls.kind
    try:
        values = msgpack.unpackb(payload)
    except Exception as exc:  # msgpack raises many types on arbitrary bytes
        raise MalformedFrame(
            f"{kind}.payload: not msgpack ({type(exc).__name__})", kind=kind, value=payload
        ) from None
    if type(values) is not list:
        raise MalformedFrame(
            f"{kind}.payload: expected an array, got {type(values).__name__}",
            kind=kind,
            value=_quote(values),
        )
    expected = len(codec.names)
    if len(values) != expected:
        sender, seq = _context(values)
        missing = codec.names[len(values) :]
        detail = f"missing field {missing[0]!r}" if missing else "unexpected extra values"
        raise InvalidMessage(
            f"{kind}: {detail} ({len(values)} values, expected {expected})",
            kind=kind,
            sender=sender,
            seq=seq,
            field=missing[0] if missing else None,
            value=len(values),
        )
    for i, _ in codec.table_positions:  # msgpack arrays arrive as lists: rows are tuples
        if type(values[i]) is list:
            values[i] = tuple(tuple(r) if type(r) is list else r for r in values[i])
    if _check(codec, values):
        return codec.cls(*values)
    for i in codec.float_positions:
        values[i] = float(values[i])
    for i, is_float in codec.table_positions:  # the table check accepts ints in float columns
        values[i] = tuple(
            tuple(float(c) if f else c for f, c in zip(is_float, row, strict=True))
            for row in values[i]
        )
    return codec.cls(*values)


def checked_wire_size(msg: Message, count_bytes: bool = True) -> int:
    """Validate ``msg`` and return its encoded size in bytes (0 when ``count_bytes`` is off).

    The in-memory bus calls this once per send or publish instead of encoding per hop.
    """
    codec = _codec_for(type(msg))
    values = _values(codec, msg)
    _check(codec, values)
    if not count_bytes:
        return 0
    return HEADER_FIXED_BYTES + codec.tag_len + len(_pack(values))
