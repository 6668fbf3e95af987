"""One registry per extension point: a name maps to what builds it (``docs/extending.md``).

A :class:`Registry` is a ``dict`` in registration order whose missing names raise one typed
line naming the field, the value and every known name; the CLI's choices and each config's
validation read the same registry, so a newcomer adds a name in one place. An entry whose
implementation needs a heavy dependency (torch, the optimum's LP solver) may be registered by
its ``module:attr`` address (:func:`load_address`), imported only when it is built, so the
processes that never build it (a prosumer's) stay light.
"""

from __future__ import annotations

import importlib
import re
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(dict[str, T], Generic[T]):
    """Names of one extension point (``field`` in configs and flags) mapped to their builders.

    ``registry[name]`` of an unknown name raises ``error`` (:meth:`unknown`); ``others``
    names the other accepted forms in that message (e.g. ``"checkpoint:DIR"``).
    """

    def __init__(self, field: str, error: type[Exception], others: str = "") -> None:
        super().__init__()
        self.field = field
        self.error = error
        self.others = others

    def __missing__(self, name: str) -> T:
        raise self.unknown(name)

    def unknown(
        self, name: object, error: type[Exception] | None = None, field: str | None = None
    ) -> Exception:
        """The one-line error for ``name``, which is not registered (``error``, ``field``:
        another class and field name than the registry's own, for a caller's own)."""
        names = ", ".join(self.labels())
        others = f" or {self.others}" if self.others else ""
        return (error or self.error)(
            f"{field or self.field}={name!r} is not one of {names}{others}"
        )

    def labels(self) -> list[str]:
        """The registered names as the unknown-name error lists them."""
        return list(self)

    def check(
        self, name: object, error: type[Exception] | None = None, field: str | None = None
    ) -> str:
        """``name`` if registered; else raise :meth:`unknown` (with ``error`` and ``field``)."""
        if not isinstance(name, str) or name not in self:
            raise self.unknown(name, error, field)
        return name


#: ``module:attr``: the address of an object in an importable module.
ADDRESS = re.compile(r"(?P<module>[A-Za-z_][\w.]*):(?P<attr>[A-Za-z_]\w*)")


def load_address(address: str, error: type[Exception], what: str = "") -> object:
    """The object at ``module:attr`` (the module imported now); ``error`` (its message
    starting with ``what``, else the address) if the module cannot be imported or has no such
    attribute."""
    what = what or address
    match = ADDRESS.fullmatch(address)
    if match is None:
        raise error(f"{what}: {address!r} is not module:attr")
    try:
        module = importlib.import_module(match["module"])
    except ImportError as exc:
        raise error(f"{what}: cannot import {match['module']}: {exc}") from None
    if not hasattr(module, match["attr"]):
        raise error(f"{what}: {match['module']} has no attribute {match['attr']!r}")
    return getattr(module, match["attr"])
