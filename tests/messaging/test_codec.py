"""Codec and validation: round trips, typed errors on bad input, robustness on garbage."""

from __future__ import annotations

import contextlib
import dataclasses
import math
from dataclasses import dataclass

import msgpack
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from messaging.codec import (
    HEADER_FIXED_BYTES,
    MAX_FRAME_BYTES,
    checked_wire_size,
    decode,
    decode_frame,
    encode,
    validate,
)
from messaging.errors import (
    InvalidMessage,
    MalformedFrame,
    MessagingError,
    ProtocolVersionError,
    RejectedMessage,
    UnknownKind,
)
from messaging.messages import (
    KINDS,
    MAX_PRICE_EUR_PER_KWH,
    MAX_TABLE_ROWS,
    MAX_TEXT_CHARS,
    PROTOCOL_VERSION,
    Bid,
    Error,
    FieldSpec,
    Heartbeat,
    Message,
    QuantityKwh,
    Trade,
    error_reply,
    message_kind,
)
from tests.messaging.frames import encode_header
from tests.messaging.strategies import messages, messages_of, values_for

SCHEMA_KINDS = (
    "Envelopes",
    "VarPrices",
    "Bid",
    "Offer",
    "Trade",
    "TradeConfirm",
    "Schedule",
    "Settlement",
    "Phase",
    "Heartbeat",
    "PhaseAck",
    "Join",
    "Leave",
    "Error",
    "Absent",
)


def test_schema_kinds_registered_with_common_fields_first() -> None:
    for name in SCHEMA_KINDS:
        cls = KINDS[name]
        assert issubclass(cls, Message)
        assert [f.name for f in dataclasses.fields(cls)][:3] == ["sender", "interval", "seq"]
        assert cls.kind == name


@pytest.mark.parametrize("name", sorted(KINDS))
@given(data=st.data())
def test_round_trip_every_kind(name: str, data: st.DataObject) -> None:
    msg = data.draw(messages_of(KINDS[name]))
    frame = encode(msg, send_ns=123)
    assert isinstance(frame, bytes)
    send_ns, back = decode_frame(frame)
    assert back == msg and type(back) is type(msg)
    assert send_ns == 123
    assert validate(msg) is msg


def test_int_accepted_for_float_field_and_decoded_as_float() -> None:
    back = decode(encode(Bid("p01", 0, 1, 2, 0)))
    assert back == Bid("p01", 0, 1, 2.0, 0.0)
    assert type(back.quantity_kwh) is float


def _valid_value(spec: FieldSpec) -> object:
    """A value every spec of its base type accepts (1.0, 0, True, "p01")."""
    if spec.choices is not None:
        return sorted(spec.choices)[0]
    if spec.base is tuple:
        return ()
    if spec.base is float and spec.hi < 1.0:  # a range that ends below 1 (q_min_kvar <= 0)
        return spec.hi
    return {float: 1.0, int: 0, bool: True, str: "p01"}[spec.base]


def _bad_values(spec: FieldSpec) -> list[object]:
    """Values that violate ``spec``: wrong types, non-finite, out-of-range, bad text."""
    wrong_type = {float: "1.0", int: 1.5, bool: 1, str: 7, tuple: "rows"}[spec.base]
    bad: list[object] = [wrong_type, None, b"bytes"]
    if spec.base is tuple:
        good = tuple(_valid_value(column) for _, column in spec.columns)
        bad += [(good[:-1],), (good, good), tuple((f"p{i}", *good[1:]) for i in range(1001))]
        for c, (_, column) in enumerate(spec.columns):
            bad += [((*good[:c], cell, *good[c + 1 :]),) for cell in _bad_values(column)[:4]]
    elif spec.base is float:
        bad += [math.nan, math.inf, -math.inf, spec.lo - 1.0, spec.hi * 2 + 1]
        if spec.lo_open:
            bad.append(spec.lo)
    elif spec.base is int:
        bad += [True, int(spec.lo) - 1, int(spec.hi) + 1]
    elif spec.base is str:
        bad += ["x" * 300, "\ud800"] if spec.pattern is None else ["x" * 200, "bad id!", "é" * 3]
        if spec.choices is not None:
            bad.append("nope")
    return bad


BAD_CASES = [
    (name, field, value)
    for name, cls in sorted(KINDS.items())
    for field, spec in cls.FIELDS
    for value in _bad_values(spec)
]


@pytest.mark.parametrize(("name", "field", "value"), BAD_CASES)
def test_bad_field_gives_typed_error_naming_field_and_value(
    name: str, field: str, value: object
) -> None:
    cls = KINDS[name]
    good = [_valid_value(spec) for _, spec in cls.FIELDS]
    names = [f for f, _ in cls.FIELDS]
    values = [value if f == field else v for f, v in zip(names, good, strict=True)]
    msg = cls(*values)
    with pytest.raises(InvalidMessage) as info:
        validate(msg)
    assert info.value.field == field and info.value.kind == name
    assert f"{name}.{field}=" in str(info.value) and "\n" not in str(info.value)
    # The same value arriving from the wire (where msgpack can carry it) fails the same way.
    try:
        payload = msgpack.packb(values, use_bin_type=True)
    except (TypeError, UnicodeEncodeError):
        return
    with pytest.raises(InvalidMessage) as wire:
        decode(encode_header(name) + payload)
    assert wire.value.field == field


def test_negative_quantity_and_price_above_max() -> None:
    with pytest.raises(InvalidMessage, match=r"Bid\.quantity_kwh=-0\.5"):
        validate(Bid("p01", 0, 1, -0.5, 0.1))
    with pytest.raises(InvalidMessage, match="limit_price_eur_per_kwh"):
        validate(Bid("p01", 0, 1, 0.5, MAX_PRICE_EUR_PER_KWH + 0.01))
    with pytest.raises(InvalidMessage, match=r"quantity_kwh=0\.0"):
        validate(Trade("p01", 0, 1, "t1", "p01", "p02", 0.0, 0.1, 0))


def test_missing_and_extra_fields() -> None:
    header = encode_header("Bid")
    with pytest.raises(InvalidMessage, match="missing field 'limit_price_eur_per_kwh'") as info:
        decode(header + msgpack.packb(["p01", 0, 5, 1.0]))
    assert info.value.sender == "p01" and info.value.seq == 5
    with pytest.raises(InvalidMessage, match="extra"):
        decode(header + msgpack.packb(["p01", 0, 5, 1.0, 0.1, 9]))


def test_unknown_version_and_kind() -> None:
    frame = encode(Heartbeat("dso", 0, 0))
    bumped = (PROTOCOL_VERSION + 1).to_bytes(2, "big") + frame[2:]
    with pytest.raises(ProtocolVersionError, match=f"expected {PROTOCOL_VERSION}"):
        decode(bumped)
    with pytest.raises(UnknownKind, match="'Gossip'"):
        decode(encode_header("Gossip") + msgpack.packb(["dso", 0, 0]))
    with pytest.raises(UnknownKind):
        validate(object())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"\x00\x01",
        b"\x00" * (HEADER_FIXED_BYTES - 1),
        bytearray(b"\x00\x01"),
        "not bytes",
        b"\x00" * (MAX_FRAME_BYTES + 1),
    ],
)
def test_malformed_framing(frame: bytes) -> None:
    with pytest.raises(MalformedFrame):
        decode(frame)


def test_malformed_payload() -> None:
    header = encode_header("Bid")
    with pytest.raises(MalformedFrame, match="not msgpack"):
        decode(header + b"\xc1")
    with pytest.raises(MalformedFrame, match="expected an array"):
        decode(header + msgpack.packb({"sender": "p01"}))
    with pytest.raises(MalformedFrame, match="not msgpack"):
        decode(header + b"\x90\x90")  # trailing bytes after the array


def _decode_outcome(frame: bytes, kind: str | None = None) -> Message | RejectedMessage:
    """Decode ``frame``; assert the outcome is a valid message (of ``kind`` when given) or a
    typed refusal with a reason, and return it."""
    try:
        msg = decode(frame)
    except RejectedMessage as exc:
        assert isinstance(exc, MessagingError) and str(exc)
        return exc
    assert type(msg) in KINDS.values()
    assert kind is None or msg.kind == kind
    assert validate(msg) is msg
    return msg


@given(frame=st.binary(max_size=128))
def test_arbitrary_bytes_decode_or_are_refused(frame: bytes) -> None:
    outcome = _decode_outcome(frame)
    if len(frame) < HEADER_FIXED_BYTES:
        assert isinstance(outcome, RejectedMessage)


@given(kind=st.sampled_from(sorted(KINDS)), tail=st.binary(max_size=64))
def test_arbitrary_bytes_after_a_valid_header_decode_or_are_refused(kind: str, tail: bytes) -> None:
    _decode_outcome(encode_header(kind) + tail, kind)


@given(kind=st.sampled_from(sorted(KINDS)), payload=st.binary(max_size=256))
def test_arbitrary_payload_under_valid_header_decodes_or_is_refused(
    kind: str, payload: bytes
) -> None:
    _decode_outcome(encode_header(kind) + payload, kind)


_leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=8)
    | st.binary(max_size=8)
)
_msgpack_values = st.recursive(
    _leaf, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner)
)


@given(kind=st.sampled_from(sorted(KINDS)), values=st.lists(_msgpack_values, max_size=10))
def test_arbitrary_value_lists_give_typed_errors(kind: str, values: list[object]) -> None:
    payload = msgpack.packb(values, use_bin_type=True)
    _decode_outcome(encode_header(kind) + payload, kind)


@given(msg=messages())
def test_checked_wire_size_is_the_frame_size(msg: Message) -> None:
    assert checked_wire_size(msg) == len(encode(msg))
    assert checked_wire_size(msg, count_bytes=False) == 0


def test_error_reply_from_rejection_is_valid() -> None:
    try:
        decode(encode_header("Bid") + msgpack.packb(["p07", 3, 11, -1.0, 0.1]))
    except InvalidMessage as exc:
        reply = error_reply(exc, sender="p01", interval=3, seq=4)
    assert reply == Error("p01", 3, 4, "Bid", 11, reply.reason)
    assert "quantity_kwh" in reply.reason
    assert validate(reply) is reply
    unknown = error_reply(UnknownKind("kind: '\\x00'"), sender="p01", interval=0, seq=1)
    assert (unknown.refused_kind, unknown.refused_seq) == ("", -1)


def test_adding_a_kind_is_one_dataclass() -> None:
    @message_kind
    @dataclass(frozen=True, slots=True)
    class Probe(Message):
        """A kind defined by a test."""

        quantity_kwh: QuantityKwh

    try:
        assert KINDS["Probe"] is Probe
        assert decode(encode(Probe("p01", 0, 1, 2.5))) == Probe("p01", 0, 1, 2.5)
        with pytest.raises(ValueError, match="already registered"):
            message_kind(Probe)
    finally:
        del KINDS["Probe"]


@given(data=st.data())
def test_decoding_agrees_with_the_field_specs(data: st.DataObject) -> None:
    cls = KINDS[data.draw(st.sampled_from(sorted(KINDS)))]
    values = [data.draw(values_for(spec) | _leaf) for _, spec in cls.FIELDS]
    problems = [spec.problem(v) for (_, spec), v in zip(cls.FIELDS, values, strict=True)]
    try:
        payload = msgpack.packb(values, use_bin_type=True)
    except UnicodeEncodeError:
        assume(False)
    frame = encode_header(cls.kind) + payload
    if any(p is not None for p in problems):
        with pytest.raises(InvalidMessage):
            decode(frame)
    else:
        assert decode(frame) == cls(*values)


def _nested(depth: int, container: type) -> object:
    value: object = 1.0
    for _ in range(depth):
        value = [value] if container is list else {"k": value}
    return value


@pytest.mark.parametrize("container", [list, dict])
@pytest.mark.parametrize("depth", [1, 1000, 1023])
def test_deeply_nested_field_is_refused_without_recursion(depth: int, container: type) -> None:
    """A ~1 kB Bid whose quantity is nested 1,023 deep: a typed refusal, no RecursionError."""
    if container is dict:
        depth = min(depth, 380)  # 3 bytes a level: the deepest dict that fits in a frame
    frame = encode_header("Bid") + msgpack.packb(["p01", 0, 1, _nested(depth, container), 0.1])
    assert len(frame) <= MAX_FRAME_BYTES
    with pytest.raises(InvalidMessage, match=r"quantity_kwh=<.* of 1 items>: nested data") as info:
        decode(frame)
    assert info.value.sender == "p01" and info.value.field == "quantity_kwh"
    payload = msgpack.packb(_nested(depth, container))  # the whole payload nested
    with contextlib.suppress(RejectedMessage):
        decode(encode_header("Bid") + payload)


@pytest.mark.parametrize("depth", [1, 1000])
def test_nested_table_cell_is_refused_without_recursion(depth: int) -> None:
    """An ``Envelopes`` row whose cell nests ~1,000 deep is refused by type, not by repr."""
    row = ["p01", _nested(depth, list), 1.0, -1.0, 1.0]
    frame = encode_header("Envelopes") + msgpack.packb(["dso", 0, 1, [row]])
    with pytest.raises(InvalidMessage, match=r"row 0 export_kw: nested data") as info:
        decode(frame)
    assert info.value.field == "rows"


def _largest(spec: FieldSpec) -> object:
    """The value of ``spec`` with the longest encoding (numbers: 9 bytes, text: 4-byte chars).

    A table: ``MAX_TABLE_ROWS`` rows with distinct keys of the longest length (text keys
    with the row number at their end, integer keys counting down from the largest).
    """
    if spec.base is tuple:
        cells = [_largest(column) for _, column in spec.columns]
        first = cells[0]
        if type(first) is int:
            keys: list[object] = [first - i for i in range(MAX_TABLE_ROWS)]
        else:
            keys = [str(first)[: -len(str(i))] + str(i) for i in range(MAX_TABLE_ROWS)]
        return tuple((key, *cells[1:]) for key in keys)
    if spec.base is float:
        return float(spec.hi) / 3 if math.isfinite(spec.hi) else 1e300 / 3
    if spec.base is int:
        return int(spec.hi)
    if spec.base is bool:
        return True
    if spec.choices is not None:
        return max(spec.choices, key=len)
    if spec.pattern is not None:
        for n in range(200, 0, -1):
            if spec.pattern.fullmatch("a" * n):
                return "a" * n
    return "\U0001f600" * MAX_TEXT_CHARS


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_largest_legal_message_fits_the_frame_limit(kind: str) -> None:
    """MAX_FRAME_BYTES (also every socket's ZMQ_MAXMSGSIZE) bounds every legal message."""
    cls = KINDS[kind]
    values = {name: _largest(spec) for name, spec in cls.FIELDS}
    msg = cls(**values)
    frame = encode(msg)
    assert len(frame) <= MAX_FRAME_BYTES
    assert decode(frame) == msg
