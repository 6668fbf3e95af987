"""Shared fixtures of the grid-core tests: both built-in feeders, their solvers and pandapower."""

from __future__ import annotations

import functools

import pytest

from dso.networks import Feeder, load_network
from dso.powerflow import RadialPowerFlow
from dso.reference import PandapowerReference

FEEDERS = ("ieee33", "swiss161")


@functools.cache
def _pf(name: str) -> RadialPowerFlow:
    return RadialPowerFlow(load_network(name))


@functools.cache
def _ref(name: str) -> PandapowerReference:
    return PandapowerReference(load_network(name))


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
    return _pf(name)


@pytest.fixture
def ref(name: str) -> PandapowerReference:
    """pandapower on the feeder ``name`` (shared across tests)."""
    return _ref(name)
