"""Frames that carry several messages: the relay's batch (downstream) and an agent's bundle
(upstream).

**Batch.**
A relay with a clock (:class:`messaging.zmq_transport.Relay`) holds the peers' broadcasts and
releases them, with the clock's own broadcasts, as batch frames on the broadcast topic with
the origin :data:`BATCH_ORIGIN`. The payload is a msgpack array ``[origin, frame, origin,
frame, ...]``: each ``frame`` is a peer's codec frame exactly as it arrived (the relay never
decodes it) and each ``origin`` the routing id the relay stamped on it. A receiver unpacks the
batch and handles every item as if it had arrived alone (origin checks, decoding, muting).

:data:`BATCH_ORIGIN` is not a valid agent id, and the relay refuses frames from any origin
that is not, so no peer can send something a receiver takes for a batch. A batch is never
larger than :data:`messaging.codec.MAX_FRAME_BYTES` (the sockets' frame limit): the relay
releases what it holds as soon as the next item would not fit, and sends alone an item too
large to share a batch.

**Bundle.** An agent that sends several messages between two receives (an order and its
phase ack; the DSO's settlements, envelopes and next phase) may send them as one frame to
the relay address :data:`BUNDLE_TO`: a msgpack array ``[to, frame, to, frame, ...]``, each
``to`` an agent id or the broadcast address, each ``frame`` a codec frame. The relay routes
every item as if it had arrived alone from the bundle's sender, in order.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import msgpack

from messaging.codec import MAX_FRAME_BYTES
from messaging.errors import MalformedFrame
from messaging.messages import AGENT_ID_PATTERN

#: Origin of a batch frame on the relay's broadcast topic (not a valid agent id).
BATCH_ORIGIN = b"+"
#: Relay address of a bundle frame (not a valid agent id, nor the broadcast address).
BUNDLE_TO = b"+"
#: The broadcast address of an agent's frame to the relay.
BROADCAST_TO = b"*"
#: Bytes of an empty batch at most (msgpack's largest array header).
EMPTY_BATCH_BYTES = 5
#: Bytes of msgpack's largest bin header.
_BIN_HEADER_BYTES = 5

_pack = msgpack.Packer(use_bin_type=True).pack


def item_bytes(origin: bytes, frame: bytes) -> int:
    """An upper bound of the bytes one ``(origin, frame)`` item adds to a batch."""
    return len(origin) + len(frame) + 2 * _BIN_HEADER_BYTES


def pack_batch(items: Sequence[tuple[bytes, bytes]]) -> bytes:
    """One batch (or bundle) frame holding ``items`` in order (at most
    :data:`EMPTY_BATCH_BYTES` plus their :func:`item_bytes`; the sender keeps that within
    the frame limit)."""
    return _pack([part for item in items for part in item])


def _unpack_pairs(what: str, data: bytes) -> list[tuple[bytes, bytes]]:
    if len(data) > MAX_FRAME_BYTES:
        raise MalformedFrame(f"{what}: {len(data)} bytes exceeds {MAX_FRAME_BYTES}")
    try:
        flat = msgpack.unpackb(data, use_list=True)
    except Exception as exc:  # anything msgpack raises on bad input
        raise MalformedFrame(f"{what}: not msgpack ({type(exc).__name__})") from None
    if type(flat) is not list or len(flat) % 2 or any(type(x) is not bytes for x in flat):
        raise MalformedFrame(f"{what}: not an array of byte pairs")
    return list(zip(flat[::2], flat[1::2], strict=True))


@functools.lru_cache(maxsize=4096)  # a batch repeats the same few ids every interval
def _is_agent_id(name: bytes) -> bool:
    return AGENT_ID_PATTERN.fullmatch(name.decode("ascii", "replace")) is not None


def unpack_batch(batch: bytes) -> list[tuple[bytes, bytes]]:
    """The ``(origin, frame)`` items of a batch frame; :class:`MalformedFrame` if it is none."""
    items = _unpack_pairs("batch", batch)
    for origin, _ in items:
        if not _is_agent_id(origin):
            raise MalformedFrame(f"batch: origin {origin[:80]!r} is not an agent id")
    return items


def unpack_bundle(bundle: bytes) -> list[tuple[bytes, bytes]]:
    """The ``(to, frame)`` items of a bundle frame; :class:`MalformedFrame` if it is none."""
    items = _unpack_pairs("bundle", bundle)
    for to, _ in items:
        if to != BROADCAST_TO and not _is_agent_id(to):
            raise MalformedFrame(
                f"bundle: address {to[:80]!r} is not an agent id nor {BROADCAST_TO!r}"
            )
    return items
