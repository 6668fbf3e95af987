"""The element-wise operations of the array rules, for numpy arrays or plain numbers.

The rules (battery limits, plan projection, order formation, the bill) are written once
against :func:`namespace`: numpy when any input is an array (prosumers, or worlds x
prosumers, as the vectorised training environment calls them), plain Python when every input
is a number (one prosumer agent per call: numpy's per-call overhead on scalars made each
market interval of 32 prosumers about 2.5 ms slower).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

#: Inputs of the array rules: an array (any shape, broadcast) or one number.
Floats = np.ndarray | float


class _Scalars:
    """numpy's names for the operations the rules use, on plain numbers."""

    @staticmethod
    def minimum(a: float, b: float) -> float:
        return min(a, b)

    @staticmethod
    def maximum(a: float, b: float) -> float:
        return max(a, b)

    @staticmethod
    def sqrt(a: float) -> float:
        return math.sqrt(a)

    @staticmethod
    def where(condition: bool, a: Any, b: Any) -> Any:
        return a if condition else b

    @staticmethod
    def asarray(value: float, dtype: type = float) -> float:
        return dtype(value)


SCALARS = _Scalars()


def namespace(*values: object) -> Any:
    """numpy if any of ``values`` is an array, else the plain-number operations."""
    return np if any(isinstance(v, np.ndarray) for v in values) else SCALARS
