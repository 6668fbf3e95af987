"""Per-process result records (JSON lines) and per-interval message counter windows.

Each process appends to its own file ``DIR/agents/<id>.jsonl``, one JSON object per line,
each line written with a single ``write`` call as soon as its interval is done. A process
killed mid-write can leave at most a torn last line, which :func:`read_records` skips (and
counts); every earlier line stays intact. A restarted process appends to the same file,
after a ``start`` record of the new incarnation.

Record types: ``start`` (pid, incarnation, start-up time), ``scheduled`` (a prosumer's row
and its trades booked when it sends its ``Schedule``, Var amount and voltage zero),
``row`` (the same after its ``Settlement``), ``interval`` (the DSO's interval row, bus
voltages, who was present and the ``Settlement`` figures each was sent, absentees and
timings), ``messages`` (counter deltas of one interval), ``final`` (why the process
stopped).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from abm.deploy.errors import RunSpecError
from messaging.counters import Counters, LatencyHistogram


def _plain(value: Any) -> Any:
    """JSON fallback for numpy scalars and arrays."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class RecordWriter:
    """Appends records to one process's JSON-lines file (one ``write`` per record)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as exc:
            raise RunSpecError(
                f"records_dir {self.path.parent}: cannot write records ({exc.strerror})"
            ) from None

    def write(self, record: dict[str, Any]) -> None:
        """Append ``record`` as one line."""
        line = json.dumps(record, default=_plain, separators=(",", ":")) + "\n"
        os.write(self._fd, line.encode())

    def write_final(self, status: int, reason: str, interval: int, **extra: Any) -> int:
        """Append the process's last record (``type: final``: its CPU time, exit status,
        reason and interval, then ``extra``); return ``status``."""
        self.write(
            {
                "type": "final",
                "cpu_s": cpu_s(),
                "status": status,
                "reason": reason,
                "interval": interval,
                **extra,
            }
        )
        return status

    def close(self) -> None:
        """Close the file (records already written stay)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


@dataclass
class RecordFile:
    """The readable records of one file and how many lines were skipped as torn."""

    records: list[dict[str, Any]]
    torn_lines: int


def read_records(path: Path) -> RecordFile:
    """Every complete record of ``path`` (a missing file has none)."""
    path = Path(path)
    if not path.exists():
        return RecordFile([], 0)
    records, torn = [], 0
    for line in path.read_bytes().split(b"\n"):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            torn += 1
            continue
        if isinstance(record, dict):
            records.append(record)
        else:
            torn += 1
    return RecordFile(records, torn)


def cpu_s() -> float:
    """CPU time (user + system, all threads) this process has used so far, s."""
    times = os.times()
    return times.user + times.system


def histogram_to_dict(hist: LatencyHistogram) -> dict[str, Any]:
    """A latency histogram as JSON data."""
    return {
        "buckets": {str(k): v for k, v in hist.buckets.items()},
        "count": hist.count,
        "total_ns": hist.total_ns,
        "max_ns": hist.max_ns,
    }


def histogram_from_dict(data: dict[str, Any]) -> LatencyHistogram:
    """The histogram of :func:`histogram_to_dict` data."""
    hist = LatencyHistogram()
    hist.buckets = {int(k): int(v) for k, v in data["buckets"].items()}
    hist.count = int(data["count"])
    hist.total_ns = int(data["total_ns"])
    hist.max_ns = int(data["max_ns"])
    return hist


def take_counters(owner: Any) -> list[dict[str, Any]]:
    """Per-kind rows of ``owner.counters`` since the last call; the counters restart at zero.

    ``owner`` is a transport (its ``counters`` attribute is replaced by a fresh one).
    """
    counters: Counters = owner.counters
    owner.counters = Counters(counters.agent_id)
    return [
        {
            "kind": kind,
            "sent": st.msgs_sent,
            "bytes_sent": st.bytes_sent,
            "recv": st.msgs_recv,
            "frames": st.frames_recv,
            "bytes_recv": st.bytes_recv,
            "rejected": st.rejected,
            "latency": histogram_to_dict(st.latency),
        }
        for kind, st in sorted(counters.kinds.items())
    ]
