"""The relay's batch frame: several broadcasts, each with its relay-stamped origin, in one frame.

A relay with a clock (:class:`messaging.zmq_transport.Relay`) holds the peers' broadcasts and
releases them, before the clock's next message, as batch frames on the broadcast topic with
the origin :data:`BATCH_ORIGIN`. The payload is a msgpack array ``[origin, frame, origin,
frame, ...]``: each ``frame`` is a peer's codec frame exactly as it arrived (the relay never
decodes it) and each ``origin`` the routing id the relay stamped on it. A receiver unpacks the
batch and handles every item as if it had arrived alone (origin checks, decoding, muting).

:data:`BATCH_ORIGIN` is not a valid agent id, and the relay refuses frames from any origin
that is not, so no peer can send something a receiver takes for a batch. A batch is never
larger than :data:`messaging.codec.MAX_FRAME_BYTES` (the sockets' frame limit): the relay
releases what it holds as soon as the next item would not fit, and sends alone an item too
large to share a batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgpack

from messaging.codec import MAX_FRAME_BYTES
from messaging.errors import MalformedFrame
from messaging.messages import AGENT_ID_PATTERN

#: Origin of a batch frame on the relay's broadcast topic (not a valid agent id).
BATCH_ORIGIN = b"+"
#: Bytes of an empty batch at most (msgpack's largest array header).
EMPTY_BATCH_BYTES = 5
#: Bytes of msgpack's largest bin header.
_BIN_HEADER_BYTES = 5

_pack = msgpack.Packer(use_bin_type=True).pack


def item_bytes(origin: bytes, frame: bytes) -> int:
    """An upper bound of the bytes one ``(origin, frame)`` item adds to a batch."""
    return len(origin) + len(frame) + 2 * _BIN_HEADER_BYTES


def pack_batch(items: Sequence[tuple[bytes, bytes]]) -> bytes:
    """One batch frame holding ``items`` in order (at most :data:`EMPTY_BATCH_BYTES` plus
    their :func:`item_bytes`; the relay keeps that within the frame limit)."""
    return _pack([part for item in items for part in item])


def unpack_batch(batch: bytes) -> list[tuple[bytes, bytes]]:
    """The ``(origin, frame)`` items of a batch frame; :class:`MalformedFrame` if it is none."""
    if len(batch) > MAX_FRAME_BYTES:
        raise MalformedFrame(f"batch: {len(batch)} bytes exceeds {MAX_FRAME_BYTES}")
    try:
        flat = msgpack.unpackb(batch, use_list=True)
    except Exception as exc:  # anything msgpack raises on bad input
        raise MalformedFrame(f"batch: not msgpack ({type(exc).__name__})") from None
    if type(flat) is not list or len(flat) % 2 or any(type(x) is not bytes for x in flat):
        raise MalformedFrame("batch: not an array of (origin, frame) byte pairs")
    items = list(zip(flat[::2], flat[1::2], strict=True))
    for origin, _ in items:
        if not AGENT_ID_PATTERN.fullmatch(origin.decode("ascii", "replace")):
            raise MalformedFrame(f"batch: origin {origin[:80]!r} is not an agent id")
    return items
