"""Shared pytest configuration.

The files with slow tests run first: with one test process per core (``-n auto``,
pyproject.toml), a long test started last would leave the other cores idle at the end.

Hypothesis profiles: ``ci`` (selected when the ``CI`` environment variable is set, as in
``.ci/run``) draws the same examples on every run, so CI is reproducible; ``dev`` (default)
draws new examples each run, so local runs keep exploring.
"""

import os

import pytest
from hypothesis import settings

settings.register_profile("dev", max_examples=60, deadline=None)
settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The test files holding a ``slow`` test first (whole, so that a module's fixtures are
    built once), in their collected order, then the others."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)
