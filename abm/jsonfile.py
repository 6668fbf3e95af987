"""JSON files of the project: atomic writes, and reads whose errors name the file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

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
