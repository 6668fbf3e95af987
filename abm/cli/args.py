"""The CLI flags derived from the typed run configurations.

Every entry point has one frozen dataclass config. Each field carries its help text in
``field(metadata={"help": ...})`` (and its ``choices``: a registry or a list, where the type
is not an enum); :func:`add_config_args` turns the fields into argparse flags and
:func:`config_from_args` builds the config back, so flags never drift from the config. A
field that is itself a config (``TrainRunConfig.sim``, a :class:`abm.config.SimConfig`)
gives its own fields' flags, but for those named in its ``metadata["exclude"]``.
Validation lives in the dataclass ``__post_init__`` and raises
:class:`abm.errors.ConfigError` naming the field and the value.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import types
import typing
from collections.abc import Collection
from typing import Any, TypeVar

C = TypeVar("C")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_config_args(
    parser: argparse.ArgumentParser, cls: type, exclude: Collection[str] = ()
) -> None:
    """Add one ``--flag`` per field of the dataclass ``cls`` (defaults from the class),
    except the fields named in ``exclude`` (a command that sets them itself)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init or f.metadata.get("cli") is False or f.name in exclude:
            continue
        typ = hints[f.name]
        if isinstance(typ, type) and dataclasses.is_dataclass(typ):  # a nested config's flags
            add_config_args(parser, typ, {*exclude, *f.metadata.get("exclude", ())})
            continue
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


def config_from_args(cls: type[C], ns: argparse.Namespace, exclude: Collection[str] = ()) -> C:
    """Build the config ``cls`` from parsed flags (validation runs in the dataclass), a
    nested config from its own flags; fields in ``exclude`` keep their defaults."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if not f.init or f.name in exclude:
            continue
        if dataclasses.is_dataclass(hints[f.name]):
            values[f.name] = config_from_args(hints[f.name], ns, f.metadata.get("exclude", ()))
        elif f.name in vars(ns):
            values[f.name] = getattr(ns, f.name)
    return cls(**values)
