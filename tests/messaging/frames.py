"""Test helper: raw frame headers built from the wire layout documented in docs/messaging.md."""

from __future__ import annotations

import struct

from messaging.messages import PROTOCOL_VERSION


def encode_header(kind: str) -> bytes:
    """A frame header of ``kind``: ``!HQB`` (version, send ns, tag length), then the tag."""
    tag = kind.encode("ascii")
    return struct.pack("!HQB", PROTOCOL_VERSION, 0, len(tag)) + tag
