"""A feeder snapshot file, so agent processes build their world without importing pandapower.

Loading a feeder goes through pandapower (about 4 s of imports per process); a deployment of
33 or 79 processes on a small host would spend most of its start-up there. The launcher
loads the feeder once and writes every field of :class:`dso.networks.Feeder` to a JSON file
(floats as ``repr``, so they round-trip exactly); each process rebuilds the same
:class:`Feeder` from it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from abm.deploy.errors import RunSpecError
from abm.output.jsonfile import read_json, write_json
from dso.networks import Feeder
from dso.trafo import Transformers

#: Version of the snapshot layout; :func:`load_feeder` refuses any other.
FEEDER_FILE_VERSION = 2


def _fields(cls: Any = Feeder) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if f.init]


def _rebuilt(value: Any) -> Any:
    if isinstance(value, dict) and "array" in value:
        return np.array(value["array"], dtype=value["dtype"])
    if isinstance(value, dict) and "transformers" in value:
        return Transformers(**{k: _rebuilt(v) for k, v in value["transformers"].items()})
    if isinstance(value, list):
        return tuple(value)
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {"array": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Transformers):
        return {"transformers": {f.name: _plain(getattr(value, f.name)) for f in _fields(value)}}
    return value


def save_feeder(feeder: Feeder, path: Path) -> Path:
    """Write every init field of ``feeder`` to ``path`` (temporary file and rename)."""
    doc = {
        "format_version": FEEDER_FILE_VERSION,
        "fields": {f.name: _plain(getattr(feeder, f.name)) for f in _fields()},
    }
    return write_json(path, doc, indent=None)


def load_feeder(path: Path) -> Feeder:
    """The feeder saved by :func:`save_feeder`; :class:`RunSpecError` names the problem."""
    doc = read_json(path, "feeder file", RunSpecError)
    if not isinstance(doc, dict) or doc.get("format_version") != FEEDER_FILE_VERSION:
        version = doc.get("format_version") if isinstance(doc, dict) else None
        raise RunSpecError(
            f"feeder file {path}: format_version={version!r}, expected {FEEDER_FILE_VERSION}"
        )
    stored = doc.get("fields")
    names = [f.name for f in _fields()]
    if not isinstance(stored, dict) or sorted(stored) != sorted(names):
        got = sorted(stored) if isinstance(stored, dict) else stored
        raise RunSpecError(f"feeder file {path}: fields {got!r}, expected {sorted(names)}")
    return Feeder(**{name: _rebuilt(stored[name]) for name in names})
