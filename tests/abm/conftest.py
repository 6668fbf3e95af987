"""Fixtures of the ``abm`` tests: small ieee33 scenarios for the multi-process deployments."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import pytest

from abm.bench.deploy import scenario_with


@pytest.fixture(scope="session")
def ieee33_with(tmp_path_factory: pytest.TempPathFactory) -> Callable[[int], Path]:
    """``ieee33_with(n)``: the default ieee33 scenario with ``n`` of its 32 prosumers
    (``p01``-``pNN``, the other loads passive), written once per ``n``. A deployment of it
    starts ``n + 1`` processes, not 33."""
    folder = tmp_path_factory.mktemp("scenarios")

    @functools.cache
    def write(n: int) -> Path:
        path, got = scenario_with("ieee33", n, folder / f"ieee33-{n}.json")
        assert got == n
        return path

    return write
