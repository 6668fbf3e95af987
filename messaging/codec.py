"""Messages to wire frames and back, and validation of in-process messages.

A message travels as two frames:

* header: protocol version (uint16, big endian), send time (uint64 ns since the epoch,
  ``time.time_ns``), then the kind name in ASCII;
* payload: a msgpack array of the field values in declaration order.

The send time lives in the header, not in the dataclass, so latency can be measured
without touching the protocol. Decoding never trusts its input: every problem raises a
:class:`messaging.errors.RejectedMessage` subclass naming the field and the value.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Sequence
from operator import attrgetter
from typing import Any

import msgpack

from messaging.errors import (
    InvalidMessage,
    MalformedFrame,
    ProtocolVersionError,
    UnknownKind,
)
from messaging.messages import AGENT_ID_PATTERN, KINDS, MAX_SEQ, PROTOCOL_VERSION, Message

#: Largest payload frame accepted, bytes (messages are small; this bounds decoding work).
MAX_PAYLOAD_BYTES = 64 * 1024
#: Longest value repr quoted in an error message, characters.
MAX_QUOTED_CHARS = 80

_HEADER = struct.Struct("!HQ")
HEADER_FIXED_BYTES = _HEADER.size

_packer = msgpack.Packer(use_bin_type=True)


class _Codec:
    """Per-kind precomputed pieces: getter of the values, specs, float positions."""

    __slots__ = ("cls", "float_positions", "getter", "kind_tag", "names", "specs")

    def __init__(self, cls: type[Message]) -> None:
        self.cls = cls
        self.names = tuple(name for name, _ in cls.FIELDS)
        self.specs = cls.FIELDS
        self.getter = attrgetter(*self.names)
        self.kind_tag = cls.kind.encode("ascii")
        self.float_positions = tuple(
            i for i, (_, spec) in enumerate(cls.FIELDS) if spec.base is float
        )


_BY_CLASS: dict[type, _Codec] = {}
_BY_TAG: dict[bytes, _Codec] = {}


def _codec_for(cls: type) -> _Codec:
    codec = _BY_CLASS.get(cls)
    if codec is None:
        if KINDS.get(getattr(cls, "kind", None)) is not cls:
            raise UnknownKind(f"kind: {cls.__name__!r} is not a registered message kind")
        codec = _BY_CLASS[cls] = _Codec(cls)
        _BY_TAG[codec.kind_tag] = codec
    return codec


def _quote(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= MAX_QUOTED_CHARS else text[: MAX_QUOTED_CHARS - 3] + "..."


def _context(values: Sequence[Any]) -> tuple[str | None, int | None]:
    """Sender and seq of a (possibly bad) value list, where they look sane."""
    sender = values[0] if len(values) > 0 else None
    seq = values[2] if len(values) > 2 else None
    good_sender = type(sender) is str and AGENT_ID_PATTERN.fullmatch(sender) is not None
    good_seq = type(seq) is int and 0 <= seq <= MAX_SEQ
    return (sender if good_sender else None), (seq if good_seq else None)


def _check(codec: _Codec, values: Sequence[Any]) -> None:
    for (name, spec), value in zip(codec.specs, values, strict=True):
        problem = spec.problem(value)
        if problem is not None:
            sender, seq = _context(values)
            raise InvalidMessage(
                f"{codec.cls.kind}.{name}={_quote(value)}: {problem}",
                kind=codec.cls.kind,
                sender=sender,
                seq=seq,
                field=name,
                value=value,
            )


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


def encode_payload(msg: Message) -> bytes:
    """The msgpack payload frame of ``msg`` (no validation; see :func:`validate`)."""
    codec = _codec_for(type(msg))
    return _packer.pack(_values(codec, msg))


def encode_header(kind: str, send_ns: int | None = None) -> bytes:
    """The header frame for a message of ``kind`` sent at ``send_ns`` (now by default)."""
    stamp = time.time_ns() if send_ns is None else send_ns
    return _HEADER.pack(PROTOCOL_VERSION, stamp) + kind.encode("ascii")


def encode(msg: Message, send_ns: int | None = None) -> list[bytes]:
    """Validate ``msg`` and return its frames ``[header, payload]``."""
    codec = _codec_for(type(msg))
    values = _values(codec, msg)
    _check(codec, values)
    stamp = time.time_ns() if send_ns is None else send_ns
    return [_HEADER.pack(PROTOCOL_VERSION, stamp) + codec.kind_tag, _packer.pack(values)]


def decode_header(header: bytes) -> tuple[int, type[Message]]:
    """Parse a header frame into ``(send_ns, message class)``; raise on any problem."""
    if len(header) <= HEADER_FIXED_BYTES:
        raise MalformedFrame(f"header: {len(header)} bytes is too short", value=header)
    version, send_ns = _HEADER.unpack_from(header)
    if version != PROTOCOL_VERSION:
        raise ProtocolVersionError(
            f"version: {version} is not supported (expected {PROTOCOL_VERSION})",
            field="version",
            value=version,
        )
    tag = bytes(header[HEADER_FIXED_BYTES:])
    codec = _BY_TAG.get(tag)
    if codec is None:
        name = tag.decode("ascii", "replace")
        cls = KINDS.get(name)
        if cls is None:
            raise UnknownKind(
                f"kind: {_quote(name)} is not one of {sorted(KINDS)}", field="kind", value=name
            )
        codec = _codec_for(cls)
    return send_ns, codec.cls


def decode_payload(cls: type[Message], payload: bytes) -> Message:
    """Build a validated ``cls`` message from its msgpack payload frame."""
    codec = _codec_for(cls)
    kind = cls.kind
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise MalformedFrame(
            f"{kind}.payload: {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}", kind=kind
        )
    try:
        values = msgpack.unpackb(payload, raw=False, use_list=True, strict_map_key=True)
    except Exception as exc:  # msgpack raises many types on arbitrary bytes
        raise MalformedFrame(
            f"{kind}.payload: not msgpack ({type(exc).__name__})", kind=kind, value=payload
        ) from None
    if type(values) is not list:
        raise MalformedFrame(
            f"{kind}.payload: expected an array, got {type(values).__name__}",
            kind=kind,
            value=values,
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
    _check(codec, values)
    for i in codec.float_positions:
        values[i] = float(values[i])
    return cls(*values)


def decode(frames: Sequence[bytes]) -> Message:
    """Frames ``[header, payload]`` to a validated message; raise a typed error otherwise."""
    return decode_frames(frames)[1]


def decode_frames(frames: Sequence[bytes]) -> tuple[int, Message]:
    """Like :func:`decode` but also return the send time (ns) from the header."""
    if len(frames) != 2:
        raise MalformedFrame(f"frames: {len(frames)} frames (expected 2)", value=len(frames))
    send_ns, cls = decode_header(frames[0])
    return send_ns, decode_payload(cls, frames[1])


def wire_size(frames: Sequence[bytes]) -> int:
    """Bytes the frames occupy on the wire, framing of the transport excluded."""
    return sum(len(f) for f in frames)


def checked_wire_size(msg: Message, count_bytes: bool = True) -> int:
    """Validate ``msg`` and return its encoded size in bytes (0 when ``count_bytes`` is off).

    The in-memory bus calls this once per send or publish instead of encoding per hop.
    """
    codec = _codec_for(type(msg))
    values = _values(codec, msg)
    _check(codec, values)
    if not count_bytes:
        return 0
    return HEADER_FIXED_BYTES + len(codec.kind_tag) + len(_packer.pack(values))
