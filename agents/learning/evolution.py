"""Evolution operators on a population of teams (ERL, Khadka & Tumer 2018; MERL 2020).

A population is a list of parameter tensors ``[P, N, ...]`` (team, prosumer, layer shape),
the layout of :meth:`agents.learning.networks.StackedMLP.params` with ``lead = (P, N)``.
Every operator works on all teams at once; only weight matrices (4-d tensors) are mutated,
biases are inherited unchanged (ERL mutates them with a 25x smaller probability).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from agents.learning.errors import LearningConfigError
from agents.learning.networks import Params


@dataclass(frozen=True)
class EvolutionConfig:
    """Population and operator settings (defaults from ERL's ``core/params.py`` and
    ``mutate_inplace``; see docs/ea-matd3.md)."""

    population: int = 10
    """Teams in the population (ERL: 10)."""
    elites: int = 2
    """Best teams kept unchanged each generation (ERL: elite fraction 0.2 of 10)."""
    tournament: int = 3
    """Tournament size of parent selection (ERL: 3)."""
    crossover_prob: float = 1.0
    """Probability that a non-elite child is a per-agent crossover of its two parents
    (ERL crosses every unselected slot); else it is a copy of the first parent."""
    mutation_prob: float = 0.9
    """Probability that a non-elite child is mutated (ERL: 0.9)."""
    mutation_frac: float = 0.1
    """Fraction of a mutated team's weights perturbed (EvoRL's ERL mutation: 0.1; ERL and
    MERL code: a random count up to 0.05 of each matrix)."""
    mutation_strength: float = 0.1
    """Gaussian sigma of a normal mutation, relative to ``|w|`` (ERL: 0.1)."""
    super_mutation_prob: float = 0.05
    """Share of perturbed weights that get a super-mutation (ERL: 0.05)."""
    super_mutation_strength: float = 10.0
    """Relative sigma of a super-mutation (ERL: 10)."""
    reset_prob: float = 0.02
    """Share of perturbed weights reset to N(0, ``reset_sigma``) (ERL: 0.02)."""
    reset_sigma: float = 0.1
    """Sigma of a reset weight (ERL: 0.1)."""
    weight_limit: float = 1e7
    """Weights are clipped to ``[-limit, limit]`` (ERL: 1e7)."""

    def __post_init__(self) -> None:
        if self.population < 2:
            raise LearningConfigError(f"population = {self.population}: must be >= 2")
        if not 0 <= self.elites < self.population:
            raise LearningConfigError(
                f"elites = {self.elites}: must be in [0, population = {self.population})"
            )
        if self.tournament < 1:
            raise LearningConfigError(f"tournament = {self.tournament}: must be >= 1")
        for name in ("crossover_prob", "mutation_prob", "mutation_frac"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise LearningConfigError(f"{name} = {value}: must be in [0, 1]")


def tournament_select(
    fitness: torch.Tensor, n: int, size: int, generator: torch.Generator
) -> torch.Tensor:
    """``n`` winners of tournaments among ``size`` teams drawn with replacement."""
    contestants = torch.randint(0, fitness.shape[0], (n, size), generator=generator)
    best = fitness[contestants].argmax(dim=1)
    return contestants.gather(1, best[:, None]).squeeze(1)


def crossover_agents(
    team_a: Params, team_b: Params, generator: torch.Generator
) -> tuple[Params, torch.Tensor]:
    """Children ``[K, N, ...]`` taking each prosumer's whole actor from parent ``a`` or ``b``
    (probability 1/2 each); also returns the mask ``[K, N]`` (True: from ``a``)."""
    k, n = team_a[0].shape[:2]
    from_a = torch.rand(k, n, generator=generator) < 0.5
    child = []
    for a, b in zip(team_a, team_b, strict=True):
        mask = from_a.reshape(k, n, *([1] * (a.dim() - 2)))
        child.append(torch.where(mask, a, b))
    return child, from_a


def mutate(
    teams: Params, config: EvolutionConfig, generator: torch.Generator
) -> tuple[Params, list[torch.Tensor]]:
    """ERL Gaussian mutation of every weight matrix of ``teams[K, N, in, out]``.

    A fraction ``mutation_frac`` of weights is perturbed: most by ``N(0, (strength |w|)^2)``,
    a share ``super_mutation_prob`` by ``N(0, (super_strength |w|)^2)``, a share
    ``reset_prob`` reset to ``N(0, reset_sigma^2)``. Returns the mutated tensors and, for
    each, the mask of perturbed entries (all False for biases).
    """
    out: Params = []
    masks: list[torch.Tensor] = []
    for p in teams:
        if p.dim() < 4:
            out.append(p.clone())
            masks.append(torch.zeros_like(p, dtype=torch.bool))
            continue
        chosen = torch.rand(p.shape, generator=generator) < config.mutation_frac
        kind = torch.rand(p.shape, generator=generator)
        noise = torch.randn(p.shape, generator=generator)
        super_mut = kind < config.super_mutation_prob
        reset = ~super_mut & (kind < config.super_mutation_prob + config.reset_prob)
        strength = torch.where(
            super_mut,
            torch.tensor(config.super_mutation_strength),
            torch.tensor(config.mutation_strength),
        )
        perturbed = torch.where(reset, noise * config.reset_sigma, p + noise * strength * p.abs())
        new = torch.where(chosen, perturbed, p).clamp(-config.weight_limit, config.weight_limit)
        out.append(new)
        masks.append(chosen)
    return out, masks


def evolve(
    population: Params, fitness: torch.Tensor, config: EvolutionConfig, generator: torch.Generator
) -> tuple[Params, torch.Tensor]:
    """One generation: elites stay in their slots unchanged; every other slot gets a child
    of two tournament winners (per-agent crossover, then mutation). Returns the new
    population and the slots ranked by ``fitness``, best first (the first ``elites`` are
    the elites' slots)."""
    order = torch.argsort(fitness, descending=True, stable=True)
    others = order[config.elites :]
    k = others.shape[0]
    parents_a = tournament_select(fitness, k, config.tournament, generator)
    parents_b = tournament_select(fitness, k, config.tournament, generator)
    team_a = [t[parents_a] for t in population]
    crossed, _ = crossover_agents(team_a, [t[parents_b] for t in population], generator)
    do_cross = torch.rand(k, generator=generator) < config.crossover_prob
    children = [_where_team(do_cross, c, a) for c, a in zip(crossed, team_a, strict=True)]
    mutated, _ = mutate(children, config, generator)
    do_mutate = torch.rand(k, generator=generator) < config.mutation_prob
    children = [_where_team(do_mutate, m, c) for m, c in zip(mutated, children, strict=True)]
    new_population = []
    for old, child in zip(population, children, strict=True):
        new = old.clone()
        new[others] = child
        new_population.append(new)
    return new_population, order


def population_diversity(population: Params) -> float:
    """Mean over all parameters of their standard deviation across teams."""
    total = sum(float(t.std(dim=0).sum()) for t in population)
    count = sum(t[0].numel() for t in population)
    return total / count


def _where_team(mask: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per team (first axis): ``a`` where ``mask`` else ``b``."""
    return torch.where(mask.reshape(-1, *([1] * (a.dim() - 1))), a, b)
