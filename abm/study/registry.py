"""The case studies by name (``p2pvar study NAME``): one module each, listed here.

A study module defines its :class:`abm.study.runs.Study` as ``STUDY``; adding a study is its
module and one entry in the tuple below (``docs/extending.md``).
"""

from __future__ import annotations

from abm.errors import ConfigError
from abm.study import algorithms, envelopes, interdependence, markets, overhead, scalability
from abm.study.runs import Study
from agents.registry import Registry

#: The studies by name, in this order (``p2pvar study --help``).
STUDIES: Registry[Study] = Registry("study", ConfigError)
for _study in (markets, envelopes, interdependence, overhead, algorithms, scalability):
    STUDIES[_study.STUDY.name] = _study.STUDY
