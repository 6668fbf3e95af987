"""Cached solvers of a network (by name or file path), shared by the dso tests."""

from __future__ import annotations

import functools

from dso.networks import load_network
from dso.powerflow import RadialPowerFlow
from dso.reference import PandapowerReference


@functools.cache
def power_flow(network: str) -> RadialPowerFlow:
    """Our radial power flow of ``network`` (built once per test session)."""
    return RadialPowerFlow(load_network(network))


@functools.cache
def reference(network: str) -> PandapowerReference:
    """The pandapower reference of ``network`` (built once per test session)."""
    return PandapowerReference(load_network(network))
