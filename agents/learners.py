"""The learners by name (:data:`LEARNERS`), torch-free: the CLI lists and checks them without
the ``train`` extra.

Each entry is the learner class's ``module:attr`` address in :mod:`agents.learning` (torch),
imported when a run trains it (:func:`learner_class`). A learner class has a ``name`` (its
key here) and a ``config_class`` (:class:`LearnerConfig`: its settings and how a run's
settings make one). Adding a learner: its module and one line here (``docs/extending.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Protocol

from agents.errors import AgentError
from agents.registry import Registry, load_address


class UnknownLearner(AgentError):
    """A learner name that is not registered."""


class LearnerConfig(Protocol):
    """What a learner's config class gives the training run (``abm.training.train_run``)."""

    #: The run settings (``p2pvar train`` flags such as ``batch_size``) the learner takes.
    SETTINGS: ClassVar[tuple[str, ...]]

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], worlds: int) -> LearnerConfig:
        """The learner's defaults with the run's given ``settings`` (names of
        :attr:`SETTINGS`) for a run of ``worlds`` worlds; a one-line error if they do not
        fit together."""
        ...


#: The learners by name, in this order (``--algo``, ``study algorithms``' default).
LEARNERS: Registry[str | type] = Registry("algo", UnknownLearner)
LEARNERS["ea-matd3"] = "agents.learning.ea_matd3:EAMATD3"
LEARNERS["matd3"] = "agents.learning.matd3:MATD3"
LEARNERS["maddpg"] = "agents.learning.maddpg:MADDPG"
LEARNERS["itd3"] = "agents.learning.itd3:ITD3"


def learner_class(name: str, error: type[Exception] = UnknownLearner) -> Any:
    """The class of learner ``name`` (its module imported now: torch); ``error`` for a name
    that is not registered."""
    entry = LEARNERS[LEARNERS.check(name, error)]
    return load_address(entry, error) if isinstance(entry, str) else entry


def learner_settings(name: str) -> tuple[str, ...]:
    """The run settings learner ``name`` takes (its config class's ``SETTINGS``)."""
    config_class: type[LearnerConfig] = learner_class(name).config_class
    return config_class.SETTINGS
