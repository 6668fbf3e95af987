"""Evolution operators: whole-actor crossover, mutation fraction, elitism, selection."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from agents.learning.ea_matd3 import EAMATD3
from agents.learning.env_protocol import EnvDims
from agents.learning.errors import LearningConfigError
from agents.learning.evolution import (
    EvolutionConfig,
    crossover_agents,
    evolve,
    mutate,
    population_diversity,
    tournament_select,
)
from agents.learning.networks import StackedMLP
from agents.learning.seeding import seeded_generator
from tests.agents.learning.conftest import TINY_EA, toy_env


def _population(p: int, n: int, seed: int, sizes: tuple[int, ...] = (6, 16, 16, 4)) -> list:
    net = StackedMLP((p, n), sizes, tanh_output=True, generator=seeded_generator(seed))
    return [t.detach().clone() for t in net.params()]


def test_crossover_takes_each_prosumer_whole_from_one_parent() -> None:
    gen = seeded_generator(0)
    a, b = _population(6, 8, 1), _population(6, 8, 2)
    child, from_a = crossover_agents(a, b, gen)
    assert 0 < int(from_a.sum()) < from_a.numel()  # both parents contribute
    for k in range(6):
        for i in range(8):
            source = a if from_a[k, i] else b
            for c, s in zip(child, source, strict=True):
                assert torch.equal(c[k, i], s[k, i])


def test_mutation_touches_about_the_requested_fraction() -> None:
    gen = seeded_generator(0)
    teams = _population(4, 8, 3, sizes=(40, 64, 64, 4))
    config = EvolutionConfig(mutation_frac=0.1)
    mutated, masks = mutate(teams, config, gen)
    weights = [i for i, t in enumerate(teams) if t.dim() == 4]
    chosen = sum(int(masks[i].sum()) for i in weights)
    total = sum(teams[i].numel() for i in weights)
    assert chosen / total == pytest.approx(0.1, abs=0.005)
    for old, new, mask in zip(teams, mutated, masks, strict=True):
        assert torch.equal(old[~mask], new[~mask])  # nothing outside the mask moves
        if old.dim() == 4:
            assert (old[mask] != new[mask]).float().mean() > 0.99
        else:
            assert torch.equal(old, new)  # biases are inherited unchanged


def test_mutation_is_relative_to_weight_size_with_rare_super_mutations() -> None:
    gen = seeded_generator(0)
    teams = [torch.full((2, 4, 100, 100), 0.5), torch.zeros(2, 4, 100)]
    config = EvolutionConfig(mutation_frac=1.0)
    mutated, _ = mutate(teams, config, gen)
    delta = (mutated[0] - teams[0]).abs() / 0.5
    # ~93 % normal (sigma 0.1 |w|), 5 % super (sigma 10 |w|), 2 % reset to N(0, 0.1)
    assert float((delta < 0.5).float().mean()) == pytest.approx(0.93 + 0.05 * 0.04, abs=0.01)
    assert float((delta > 3.0).float().mean()) == pytest.approx(0.05 * 0.76, abs=0.005)


def test_elites_survive_unchanged_and_others_change() -> None:
    gen = seeded_generator(0)
    population = _population(6, 4, 5)
    fitness = torch.tensor([1.0, 5.0, -2.0, 4.0, 0.0, 3.0])
    config = EvolutionConfig(population=6, elites=2, mutation_prob=1.0)
    new, ranking = evolve(population, fitness, config, gen)
    assert ranking.tolist() == [1, 3, 5, 0, 4, 2]
    for slot in range(6):
        same = all(torch.equal(o[slot], n[slot]) for o, n in zip(population, new, strict=True))
        assert same == (slot in (1, 3))


def test_tournament_prefers_the_fit() -> None:
    gen = seeded_generator(0)
    fitness = torch.arange(10.0)
    assert set(tournament_select(fitness, 50, 300, gen).tolist()) == {9}
    wins = tournament_select(fitness, 4000, 3, gen)
    counts = torch.bincount(wins, minlength=10).float() / 4000
    # P(winner = k) = ((k+1)^3 - k^3) / 1000 for a tournament of 3 drawn with replacement
    expected = torch.tensor([((k + 1) ** 3 - k**3) / 1000 for k in range(10)])
    assert torch.allclose(counts, expected, atol=0.03)


def test_diversity_is_zero_for_clones_and_positive_otherwise() -> None:
    population = _population(5, 3, 7)
    clones = [t[:1].expand_as(t).clone() for t in population]
    assert population_diversity(clones) == 0.0
    assert population_diversity(population) > 0.0


def test_ea_copies_the_learner_into_the_worst_slot_and_keeps_elites() -> None:
    env = toy_env()
    ea = EAMATD3(EnvDims.of(env), TINY_EA, seeded_generator(0))
    before = [t.clone() for t in ea.population]
    ea.iterate(env)
    learner = ea.learner.policy_team()
    slots_with_learner = [
        s
        for s in range(4)
        if all(torch.equal(p[s], m[0]) for p, m in zip(ea.population, learner, strict=True))
    ]
    kept = [
        s
        for s in range(4)
        if all(torch.equal(o[s], n[s]) for o, n in zip(before, ea.population, strict=True))
    ]
    assert len(slots_with_learner) == 1 and len(kept) == 1  # one elite, one learner copy
    assert slots_with_learner != kept
    assert all(torch.equal(c[0], o[kept[0]]) for c, o in zip(ea.champion, before, strict=True))


def test_bad_evolution_settings_refused() -> None:
    with pytest.raises(LearningConfigError, match="elites = 10"):
        EvolutionConfig(population=10, elites=10)
    with pytest.raises(LearningConfigError, match=r"mutation_frac = 1\.5"):
        dataclasses.replace(EvolutionConfig(), mutation_frac=1.5)
