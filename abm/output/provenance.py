"""Provenance of a run: the resolved config, seed, package versions and the source's git
commit in ``config.json``."""

from __future__ import annotations

import dataclasses
import functools
import platform
import subprocess
import sys
from enum import Enum
from pathlib import Path
from typing import Any

from abm.output.jsonfile import write_json

VERSIONED_PACKAGES = (
    "p2pvar",
    "numpy",
    "pandas",
    "pandapower",
    "mesa",
    "torch",
    "pyzmq",
    "msgpack",
    "pettingzoo",
)


def package_versions() -> dict[str, str]:
    """Versions of Python and of the packages a result depends on."""
    from importlib import metadata  # here, not at the top: agent processes need none

    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in VERSIONED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


@functools.cache
def git_commit() -> str:
    """The source tree's git commit (``+dirty`` with uncommitted changes), else ``unknown``."""
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, paths, enum members and tuples to plain JSON values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, Enum):
        return obj.value
    return obj


def write_run_config(out_dir: Path, config: Any, seed: int | None, **extra: Any) -> Path:
    """Write ``config.json`` (resolved config, seed, package versions, git commit).

    Written to a temporary file and renamed, so a crash never leaves a half-written file.
    """
    doc = {
        "config": to_jsonable(config),
        "seed": seed,
        "versions": package_versions(),
        "git_commit": git_commit(),
    }
    doc.update(to_jsonable(extra))
    return write_json(Path(out_dir) / "config.json", doc, sort_keys=True)
