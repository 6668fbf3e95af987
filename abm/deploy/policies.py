"""Policy specs: how each prosumer process finds its own policy.

A spec is one string per prosumer (``RunSpec.agents[id].policy``):

* ``rule``, ``random``, ``tou``, ``mpc``, ``mpc:FORECASTER`` or ``mpc-perfect`` — the
  baselines (each MPC process solves its own LP; not ``optimum``, one LP over every
  prosumer) (:func:`abm.run_inputs.make_policy`);
* ``checkpoint:DIR`` — the prosumer's own actor file ``DIR/<id>.npz`` (only that file is
  read, with numpy: no torch, no training code);
* ``module:factory`` or ``module:factory@PATH`` — import ``module`` (only in the process
  that needs it) and call ``factory(rng, path)`` with the agent's own generator and ``PATH``
  (``None`` without ``@``); it returns anything with ``act(obs) -> action vector``.

Other learned policies plug in as a factory that loads one file. :func:`rule` and
:func:`random` are baselines as factories, so ``abm.deploy.policies:random`` is the same
policy as ``random``.
"""

from __future__ import annotations

import importlib
import re

import numpy as np

from abm.config import PolicyName, checkpoint_dir
from abm.deploy.errors import PolicySpecError
from abm.errors import ConfigError
from abm.run_inputs import RunInputs, make_policy
from agents.forecast import ForecastError, mpc_forecaster
from agents.policy import Policy, RandomPolicy, RulePolicy

#: The baseline names a process can build alone (``optimum`` needs every prosumer's LP).
DEPLOYABLE = tuple(p for p in PolicyName if p != PolicyName.OPTIMUM)
#: ``module:factory`` with an optional ``@path``.
FACTORY_SPEC = re.compile(r"(?P<module>[A-Za-z_][\w.]*):(?P<attr>[A-Za-z_]\w*)(@(?P<path>.+))?")


def rule(rng: np.random.Generator, path: str | None = None) -> Policy:
    """The rule-based baseline as a policy factory (``rng`` and ``path`` unused)."""
    return RulePolicy()


def random(rng: np.random.Generator, path: str | None = None) -> Policy:
    """The random baseline as a policy factory, drawing from ``rng``."""
    return RandomPolicy(rng)


def check_policy_spec(spec: str) -> str:
    """Return ``spec`` if it is well formed (nothing is imported); raise otherwise."""
    if spec == PolicyName.OPTIMUM:
        raise PolicySpecError(
            "policy='optimum' runs in one process only (simulate, optimum, study): its "
            "dispatch is one linear program over every prosumer"
        )
    if spec in tuple(PolicyName) or checkpoint_dir(spec) or _mpc(spec):
        return spec
    if isinstance(spec, str) and FACTORY_SPEC.fullmatch(spec):
        return spec
    raise PolicySpecError(
        f"policy={spec!r} is not one of {', '.join(DEPLOYABLE)}, checkpoint:DIR "
        "or module:factory[@path]"
    )


def _mpc(spec: str) -> bool:
    """Whether ``spec`` names the forecast MPC (``mpc:FORECASTER`` checked, one line)."""
    try:
        return mpc_forecaster(spec) is not None
    except ForecastError as exc:
        raise PolicySpecError(f"policy={spec!r}: {exc}") from None


def load_policy(spec: str, rng: np.random.Generator, world: RunInputs, index: int) -> Policy:
    """The policy of ``spec`` (see the module docstring) of prosumer ``index`` of ``world``,
    built with the agent's ``rng``."""
    check_policy_spec(spec)
    if spec in tuple(PolicyName) or checkpoint_dir(spec) or _mpc(spec):
        try:
            return make_policy(spec, rng, world, index)
        except ConfigError as exc:
            raise PolicySpecError(str(exc)) from None
    match = FACTORY_SPEC.fullmatch(spec)
    if match is None:  # check_policy_spec let it through: a baseline name, handled above
        raise PolicySpecError(f"policy={spec!r} is not module:factory[@path]")
    module_name, attr, path = match["module"], match["attr"], match["path"]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PolicySpecError(f"policy={spec!r}: cannot import {module_name}: {exc}") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise PolicySpecError(f"policy={spec!r}: {module_name} has no callable {attr!r}")
    try:
        policy = factory(rng, path)
    except Exception as exc:  # a plug-in's own failure, reported as one line
        raise PolicySpecError(
            f"policy={spec!r}: the factory failed: {type(exc).__name__}: {exc}"
        ) from None
    if not callable(getattr(policy, "act", None)):
        raise PolicySpecError(f"policy={spec!r}: the factory returned {policy!r}, without act()")
    return policy
