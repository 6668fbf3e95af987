"""The prosumer policies by name (:data:`POLICIES`) and the one parser of a policy spec.

A policy spec (``SimConfig.policy``, ``--policy``, a deploy run's per-prosumer policy) is

* ``NAME`` — a registered policy: ``rule``, ``random``, ``tou`` (registered here) and
  ``optimum`` (registered by ``abm.config``: it needs the whole run);
* ``NAME:ARG`` — a registered policy that takes an argument: ``checkpoint:DIR``, each
  prosumer's own actor file ``DIR/<id>.npz`` (:func:`load_actor_policy`; registered by
  ``abm.config``, as the MPC, since its outlook is built from the run's inputs);
* ``module:factory`` or ``module:factory@PATH`` — import ``module`` (only in the process that
  needs it) and call ``factory(rng, path)`` with the prosumer's own generator and ``PATH``
  (``None`` without ``@``); it returns anything with ``act(obs) -> action vector``.

A registered policy is a :class:`PolicyKind`: ``build(run, arg)`` is called once per run and
returns the maker of each prosumer's policy (so a policy solved for the whole run, the
optimum, is solved once, and the maker owns the solution). Adding a policy: one module with
its class and one line registering it here (``docs/extending.md``). Torch-free and light: a
prosumer process reads this module.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from agents.actor import ActorPolicy, load_prosumer_actor
from agents.errors import AgentError
from agents.outlook import ProsumerOutlook
from agents.policy import OBS_DIM, Policy, RandomPolicy, RulePolicy, TouPolicy
from agents.registry import ADDRESS, Registry, load_address


class PolicyError(AgentError):
    """A policy spec is malformed or unknown, or its policy cannot be built."""


class PolicyRun(Protocol):
    """What a policy factory reads of the run (``abm.inputs.run_inputs.RunInputs`` is one)."""

    @property
    def prosumer_ids(self) -> tuple[str, ...]:
        """Prosumer ids in scenario order (a prosumer's index is its position)."""
        ...

    @property
    def network_name(self) -> str:
        """The feeder's name."""
        ...

    @property
    def hourly_retail_eur_per_kwh(self) -> Sequence[float]:
        """The retail price of each hour of the day (the ToU rule's tariff)."""
        ...


@dataclass(frozen=True)
class RunView:
    """A :class:`PolicyRun` from its three values (a run without the rest of its inputs)."""

    prosumer_ids: tuple[str, ...]
    network_name: str
    hourly_retail_eur_per_kwh: Sequence[float]


#: Builds the policy of the prosumer of this index with its own generator.
PolicyMaker = Callable[[int, np.random.Generator], Policy]


@dataclass(frozen=True)
class PolicyKind:
    """A registered policy.

    ``build(run, arg)`` is called once per run (``arg``: the text after ``NAME:``, ``None``
    for a policy without argument) and returns the maker of each prosumer's policy; it may be
    given as its ``module:attr`` address, imported when first built (a heavy implementation).
    ``argument``: the argument's name in ``NAME:ARG`` (``""``: the policy takes none).
    ``default_argument``: what the bare ``NAME`` means (``mpc`` is ``mpc:seasonal``).
    ``whole_run``: the policy needs every prosumer's data, so a prosumer's own process (the
    multi-process deployment) cannot build it.
    """

    build: Callable[[PolicyRun, str | None], PolicyMaker] | str
    argument: str = ""
    whole_run: bool = False
    #: The argument of the bare ``NAME`` (``""``: ``NAME`` alone is refused if it takes one).
    default_argument: str = ""
    #: Checks an argument when the spec is parsed (raises one line on a bad one); None: none.
    check_argument: Callable[[str], object] | None = None

    def maker(self, run: PolicyRun, arg: str | None) -> PolicyMaker:
        """``build(run, arg)``, the address imported first if given as one."""
        build = self.build
        if isinstance(build, str):
            loaded = load_address(build, PolicyError)
            if not callable(loaded):
                raise PolicyError(f"{build}: not callable")
            build = loaded
        return build(run, arg)


def per_prosumer(
    make: Callable[[PolicyRun, int, np.random.Generator], Policy],
) -> Callable[[PolicyRun, str | None], PolicyMaker]:
    """A :attr:`PolicyKind.build` from ``make(run, index, rng)``, one prosumer's policy (for
    a policy without argument and without anything shared by the run's prosumers)."""
    return lambda run, _arg: lambda index, rng: make(run, index, rng)


class PolicyRegistry(Registry[PolicyKind]):
    """:class:`Registry` of :class:`PolicyKind`; lists ``NAME:ARG`` for those with one."""

    def labels(self) -> list[str]:
        """See :meth:`Registry.labels`."""
        out = []
        for name, kind in self.items():
            if not kind.argument or kind.default_argument:
                out.append(name)
            if kind.argument:
                out.append(f"{name}:{kind.argument}")
        return out


#: ``module:factory`` with an optional ``@path``.
FACTORY_SPEC = re.compile(rf"(?P<address>{ADDRESS.pattern})(@(?P<path>.+))?")
#: The other form of a spec, named in the unknown-policy error.
FACTORY_FORM = "module:factory[@path]"


@dataclass(frozen=True)
class PolicySpec:
    """A parsed policy spec: the registered kind and its argument, or a factory spec."""

    text: str
    kind: PolicyKind
    arg: str | None


def parse_policy(spec: object, error: type[Exception] = PolicyError) -> PolicySpec:
    """The one parser of a policy spec (see the module docstring); nothing is imported.
    ``error`` (one line naming the spec and the known names) for any other text."""
    if isinstance(spec, str):
        name, colon, arg = spec.partition(":")
        kind = POLICIES.get(name)
        if kind is not None and bool(kind.argument) == bool(colon) == bool(arg):
            return _checked(PolicySpec(spec, kind, arg or None), error)
        if kind is not None and kind.default_argument and not colon:
            return _checked(PolicySpec(spec, kind, kind.default_argument), error)
        if kind is None and FACTORY_SPEC.fullmatch(spec):
            return PolicySpec(spec, FACTORY_KIND, spec)
    raise POLICIES.unknown(spec, error)


def _checked(parsed: PolicySpec, error: type[Exception]) -> PolicySpec:
    """``parsed``, its argument checked by its kind's ``check_argument`` (one line)."""
    if parsed.kind.check_argument is not None and parsed.arg is not None:
        try:
            parsed.kind.check_argument(parsed.arg)
        except AgentError as exc:
            raise error(f"policy={parsed.text!r}: {exc}") from None
    return parsed


def policy_maker(spec: str, run: PolicyRun) -> PolicyMaker:
    """The maker of each prosumer's policy ``spec`` in ``run`` (built once for the run)."""
    parsed = parse_policy(spec)
    return parsed.kind.maker(run, parsed.arg)


def make_policy(spec: str, run: PolicyRun, index: int, rng: np.random.Generator) -> Policy:
    """The policy ``spec`` of prosumer ``index`` of ``run``, with its own generator ``rng``."""
    return policy_maker(spec, run)(index, rng)


def load_actor_policy(
    directory: Path | str,
    prosumer_id: str,
    network: str,
    retail_eur_per_kwh: Sequence[float],
    outlook: Callable[[], ProsumerOutlook] | None = None,
) -> ActorPolicy:
    """The policy of ``prosumer_id`` from its own actor file in ``directory`` (only that file
    is read; :func:`agents.actor.load_prosumer_actor` checks it), a residual actor's base
    policy built from :data:`POLICIES`. ``retail_eur_per_kwh``: the market's hourly retail
    tariff (a ToU base policy's); ``outlook``: builds the prosumer's outlook, called only for
    an actor that reads it (format 3)."""
    actor = load_prosumer_actor(directory, prosumer_id, network)
    own = outlook() if actor.obs_dim == OBS_DIM and outlook is not None else None
    if not actor.base_policy:
        return ActorPolicy(actor, outlook=own)
    run = RunView((prosumer_id,), network, retail_eur_per_kwh)
    rng = np.random.default_rng(
        0
    )  # unused: a base policy (agents.actor.BASE_POLICIES) draws nothing
    return ActorPolicy(actor, make_policy(actor.base_policy, run, 0, rng), own)


def _factory(_run: PolicyRun, spec: str | None) -> PolicyMaker:
    """A ``module:factory[@path]`` spec's maker: the module imported now, ``factory(rng,
    path)`` called for each prosumer and its result checked."""
    match = FACTORY_SPEC.fullmatch(str(spec))
    if match is None:
        raise POLICIES.unknown(spec)
    address, path = match["address"], match["path"]
    factory = load_address(address, PolicyError, what=f"policy={spec!r}")
    if not callable(factory):
        raise PolicyError(f"policy={spec!r}: {address} is not callable")

    def make(_index: int, rng: np.random.Generator) -> Policy:
        try:
            policy = factory(rng, path)
        except Exception as exc:  # a plug-in's own failure, reported as one line
            raise PolicyError(
                f"policy={spec!r}: the factory failed: {type(exc).__name__}: {exc}"
            ) from None
        if not callable(getattr(policy, "act", None)):
            raise PolicyError(f"policy={spec!r}: the factory returned {policy!r}, without act()")
        return policy

    return make


#: A ``module:factory[@path]`` spec (not registered: its text names the factory).
FACTORY_KIND = PolicyKind(_factory)

#: The policies by name, in this order (``abm.config`` adds the run-level ones).
POLICIES = PolicyRegistry("policy", PolicyError, others=FACTORY_FORM)
POLICIES["rule"] = PolicyKind(per_prosumer(lambda run, i, rng: RulePolicy()))
POLICIES["random"] = PolicyKind(per_prosumer(lambda run, i, rng: RandomPolicy(rng)))
POLICIES["tou"] = PolicyKind(
    per_prosumer(lambda run, i, rng: TouPolicy(run.hourly_retail_eur_per_kwh))
)
