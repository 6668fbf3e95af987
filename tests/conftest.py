"""Shared pytest configuration.

Hypothesis profiles: ``ci`` (selected when the ``CI`` environment variable is set, as in
``.ci/run``) draws the same examples on every run, so CI is reproducible; ``dev`` (default)
draws new examples each run, so local runs keep exploring.
"""

import os

from hypothesis import settings

settings.register_profile("dev", max_examples=60, deadline=None)
settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
