"""The element-wise operations of the array rules, for numpy arrays or plain numbers (and
plain lists where a rule sums over a few items, such as one prosumer's trades).

The rules (battery limits, plan projection, order formation, the bill) are written once
against :func:`namespace`: numpy when any input is an array (prosumers, or worlds x
prosumers, as the vectorised training environment calls them), plain Python when every input
is a number (one prosumer agent per call: numpy's per-call overhead on scalars made each
market interval of 32 prosumers about 2.5 ms slower).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np

#: Inputs of the array rules: an array (any shape, broadcast) or one number.
Floats = np.ndarray | float
#: The fields of a record (:class:`agents.policy.Observation`, :class:`agents.plan.Plan`, ...):
#: numbers for one prosumer, or arrays (worlds x prosumers) for a batch.
F = TypeVar("F", float, np.ndarray)


class _Scalars:
    """numpy's names for the operations the rules use, on plain numbers (the builtins
    themselves where they fit, so that a call costs no extra Python frame)."""

    minimum = staticmethod(min)
    maximum = staticmethod(max)
    sqrt = staticmethod(math.sqrt)

    @staticmethod
    def where(condition: bool, a: Any, b: Any) -> Any:
        return a if condition else b

    @staticmethod
    def asarray(value: float, dtype: type = float) -> float:
        return dtype(value)

    @staticmethod
    def multiply(a: Sequence[float], b: Sequence[float]) -> list[float]:
        return [x * y for x, y in zip(a, b, strict=True)]

    @staticmethod
    def bincount(index: Sequence[int], weights: Sequence[float], minlength: int) -> list[float]:
        out = [0.0] * minlength
        for i, w in zip(index, weights, strict=True):
            out[i] += w
        return out


SCALARS = _Scalars()


def namespace(*values: object) -> Any:
    """numpy if any of ``values`` is an array, else the plain-number (and list) operations."""
    for value in values:  # a loop, not any(...): this runs several times per prosumer call
        if isinstance(value, np.ndarray):
            return np
    return SCALARS
