"""Policy specs of the multi-process deployment: how each prosumer process finds its own.

A spec is one string per prosumer (``RunSpec.agents[id].policy``), parsed by the one parser
of ``agents.policy_registry`` (a registered name, ``checkpoint:DIR``, or
``module:factory[@PATH]``), but for a policy that needs the whole run (``optimum``, one LP
over every prosumer): a prosumer's process builds only its own policy. A ``checkpoint:DIR``
process reads only its own actor file ``DIR/<id>.npz``, with numpy (no torch, no training
code); a ``module:factory`` module is imported only in the process that needs it.

:func:`rule` and :func:`random` are baselines as factories, so ``abm.deploy.policies:random``
is the same policy as ``random``.
"""

from __future__ import annotations

import numpy as np

from abm.deploy.errors import PolicySpecError
from abm.inputs.run_inputs import RunInputs
from agents.policy import Policy, RandomPolicy, RulePolicy
from agents.policy_registry import PolicyError, make_policy, parse_policy


def rule(rng: np.random.Generator, path: str | None = None) -> Policy:
    """The rule-based baseline as a policy factory (``rng`` and ``path`` unused)."""
    return RulePolicy()


def random(rng: np.random.Generator, path: str | None = None) -> Policy:
    """The random baseline as a policy factory, drawing from ``rng``."""
    return RandomPolicy(rng)


def check_policy_spec(spec: str) -> str:
    """Return ``spec`` if a prosumer's process can build it (nothing is imported); raise
    :class:`PolicySpecError` otherwise."""
    if parse_policy(spec, PolicySpecError).kind.whole_run:
        raise PolicySpecError(
            f"policy={spec!r} runs in one process only (simulate, optimum, study): its "
            "dispatch is solved over every prosumer"
        )
    return spec


def load_policy(spec: str, rng: np.random.Generator, world: RunInputs, index: int) -> Policy:
    """The policy of ``spec`` (see the module docstring) of prosumer ``index`` of ``world``,
    built with the agent's ``rng``."""
    check_policy_spec(spec)
    try:
        return make_policy(spec, world, index, rng)
    except PolicyError as exc:
        raise PolicySpecError(str(exc)) from None
