"""The comparison of runs: the share of the optimum's savings (``analysis/compare.py``)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.compare import share_of_optimum_savings


def test_share_of_optimum_savings() -> None:
    assert share_of_optimum_savings(100.0, 90.0, 80.0) == pytest.approx(0.5)
    assert share_of_optimum_savings(100.0, 80.0, 80.0) == pytest.approx(1.0)
    assert share_of_optimum_savings(100.0, 100.0, 80.0) == pytest.approx(0.0)
    assert share_of_optimum_savings(100.0, 110.0, 80.0) == pytest.approx(-0.5)
    assert math.isnan(share_of_optimum_savings(100.0, 90.0, 100.0))  # nothing to share
    shares = share_of_optimum_savings(100.0, np.array([90.0, 95.0]), np.array([80.0, 90.0]))
    np.testing.assert_allclose(shares, [0.5, 0.5])
