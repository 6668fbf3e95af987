"""Shared fixtures of the grid-core tests: both built-in feeders, their solvers and pandapower."""

from __future__ import annotations

import pytest

from dso.networks import Feeder, load_network
from dso.powerflow import RadialPowerFlow
from dso.reference import PandapowerReference
from tests.dso.feeders import power_flow, reference

FEEDERS = ("ieee33", "swiss161")


@pytest.fixture(params=FEEDERS)
def name(request: pytest.FixtureRequest) -> str:
    """Each built-in feeder in turn."""
    return request.param


@pytest.fixture
def feeder(name: str) -> Feeder:
    """The feeder ``name``."""
    return load_network(name)


@pytest.fixture
def pf(name: str) -> RadialPowerFlow:
    """Our power flow of the feeder ``name`` (shared across tests)."""
    return power_flow(name)


@pytest.fixture
def ref(name: str) -> PandapowerReference:
    """pandapower on the feeder ``name`` (shared across tests)."""
    return reference(name)
