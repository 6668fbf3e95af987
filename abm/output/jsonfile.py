"""JSON files of the project: atomic writes, reads whose errors name the file, and the one
validator that builds a dataclass from a JSON object (:func:`build_dataclass`)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from abm.errors import ConfigError

T = TypeVar("T")


def write_json(path: Path, doc: Any, *, indent: int | None = 2, sort_keys: bool = False) -> Path:
    """Write ``doc`` to ``path`` via a temporary file and a rename (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=indent, sort_keys=sort_keys) + "\n")
    tmp.replace(path)
    return path


def read_json(path: Path, what: str, error: type[Exception]) -> Any:
    """The parsed JSON of ``path``; raises ``error("<what> <path>: ...")`` when unreadable."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise error(f"{what} {path}: cannot read: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{what} {path}: not valid JSON: {exc}") from None


def load_json(path: Path, what: str, error: type[Exception], build: Callable[[Any], T]) -> T:
    """``build`` applied to the JSON of ``path``; its ``error`` is prefixed with the file."""
    data = read_json(path, what, error)
    try:
        return build(data)
    except error as exc:
        raise error(f"{what} {path}: {exc}") from None


def json_object(data: Any, where: str, error: type[Exception] = ConfigError) -> Mapping[str, Any]:
    """``data`` if it is a JSON object, else ``error`` naming ``where``."""
    if not isinstance(data, Mapping):
        raise error(f"{where}={data!r} must be a JSON object")
    return data


def json_text(
    data: Mapping[str, Any],
    key: str,
    where: str,
    error: type[Exception] = ConfigError,
    *,
    optional: bool = False,
) -> Any:
    """``data[key]`` if it is a non-empty string (or absent and ``optional``), else ``error``."""
    value = data.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        raise error(f"{where}.{key}={value!r} must be a non-empty string")
    return value


def build_dataclass(cls: type[T], data: Any, where: str, error: type[Exception] = ConfigError) -> T:
    """Dataclass ``cls`` from a JSON object holding its init fields, the required ones at least.

    Every problem is one ``error`` naming ``where`` and the field: not an object, an unknown
    or missing field, a wrong argument, or the :class:`ConfigError` of the class's own
    validation (re-raised as ``error`` with ``where`` when ``error`` is another class).
    """
    data = json_object(data, where, error)
    fields = [f for f in dataclasses.fields(cls) if f.init]  # type: ignore[arg-type]
    names = {f.name for f in fields}
    unknown = sorted(set(data) - names)
    if unknown:
        raise error(f"{where}.{unknown[0]}: unknown field; expected {sorted(names)}")
    required = {
        f.name
        for f in fields
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    missing = sorted(required - set(data))
    if missing:
        raise error(f"{where}.{missing[0]}: missing field")
    try:
        return cls(**data)
    except TypeError as exc:
        raise error(f"{where}: {exc}") from None
    except ConfigError as exc:
        if error is ConfigError:
            raise
        raise error(f"{where}: {exc}") from None
