"""Typed run configurations and the CLI flags derived from them.

Every entry point has one frozen dataclass config. Each field carries its help text in
``field(metadata={"help": ...})``; :func:`add_config_args` turns the fields into argparse
flags and :func:`config_from_args` builds the config back, so flags never drift from the
config. Validation lives in the dataclass ``__post_init__`` and raises
:class:`abm.errors.ConfigError` naming the field and the value.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import platform
import sys
import types
import typing
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from abm.jsonfile import write_json

C = TypeVar("C")

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


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_config_args(parser: argparse.ArgumentParser, cls: type) -> None:
    """Add one ``--flag`` per field of the dataclass ``cls`` (defaults from the class)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init or f.metadata.get("cli") is False:
            continue
        typ = hints[f.name]
        help_text = f.metadata.get("help", "")
        default = f.default if f.default is not dataclasses.MISSING else None
        kwargs: dict[str, Any] = {"dest": f.name, "default": default}
        if typ is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            origin = typing.get_origin(typ)
            args = typing.get_args(typ)
            if isinstance(typ, type) and issubclass(typ, enum.Enum):
                kwargs["choices"] = [str(m.value) for m in typ]
                kwargs["type"] = str
            elif origin is typing.Literal:
                kwargs["choices"] = list(args)
                kwargs["type"] = type(args[0])
            elif origin in (typing.Union, types.UnionType):
                kwargs["type"] = next(a for a in args if a is not type(None))
            else:
                kwargs["type"] = typ
            if "choices" in f.metadata:
                kwargs["choices"] = f.metadata["choices"]
        parser.add_argument(_flag(f.name), help=f"{help_text} (default: {default})", **kwargs)


def config_from_args(cls: type[C], ns: argparse.Namespace) -> C:
    """Build the config ``cls`` from parsed flags (validation runs in the dataclass)."""
    names = {f.name for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in vars(ns).items() if k in names})


def package_versions() -> dict[str, str]:
    """Versions of Python and of the packages a result depends on."""
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in VERSIONED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, paths and tuples to plain JSON values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_run_config(out_dir: Path, config: Any, seed: int | None, **extra: Any) -> Path:
    """Write ``config.json`` (resolved config, seed, package versions) into ``out_dir``.

    Written to a temporary file and renamed, so a crash never leaves a half-written file.
    """
    doc = {"config": to_jsonable(config), "seed": seed, "versions": package_versions()}
    doc.update(to_jsonable(extra))
    return write_json(Path(out_dir) / "config.json", doc, sort_keys=True)
