"""The genetic algorithm and the random baseline on a synthetic landscape (no TVM involved)."""

from __future__ import annotations

import statistics

import pytest

from edgeprune.compiler.tuner.ga import GeneticSearch
from edgeprune.compiler.tuner.random_search import RandomSearch
from tests.compiler.tuner.landscape import cost, landscape_space, run_search


@pytest.mark.parametrize("make", [GeneticSearch, RandomSearch])
def test_same_seed_same_trials_other_seed_other_trials(make):
    space = landscape_space()
    first = run_search(make(space, seed=7), 60)
    assert first == run_search(make(space, seed=7), 60)
    assert first != run_search(make(space, seed=8), 60)
    assert first[0] == space.default_gene()


@pytest.mark.parametrize("make", [GeneticSearch, RandomSearch])
def test_never_proposes_a_gene_twice_and_exhausts_the_space(make):
    space = landscape_space(3, 3)  # 27 genes
    trials = run_search(make(space, seed=1), 1000)
    assert len(trials) == len(set(trials)) == 27
    strategy = make(space, seed=1)
    run_search(strategy, 1000)
    assert strategy.propose() == []


def test_elites_survive_and_failures_lose():
    space = landscape_space()
    ga = GeneticSearch(space, seed=3, population=8, elite=2)
    first = ga.propose()
    for i, gene in enumerate(first):
        ga.tell(gene, float("inf") if i % 2 else cost(gene))
    ga.propose()
    best_two = sorted((cost(g), g) for i, g in enumerate(first) if i % 2 == 0)[:2]
    assert [g for _, g in best_two] == [g for _, g in ga.population[:2]]
    assert all(c == float("inf") for c, _ in ga.population[4:])


def test_ga_beats_random_search_in_expectation():
    space = landscape_space()
    budget, seeds = 64, range(24)
    best = lambda trials: min(cost(g) for g in trials)  # noqa: E731
    ga = [best(run_search(GeneticSearch(space, seed=s), budget)) for s in seeds]
    rnd = [best(run_search(RandomSearch(space, seed=s), budget)) for s in seeds]
    assert statistics.mean(ga) < 0.8 * statistics.mean(rnd)
    assert sum(g < r for g, r in zip(ga, rnd)) >= 16


def test_ga_improves_on_the_default_within_a_small_budget():
    space = landscape_space()
    trials = run_search(GeneticSearch(space, seed=0), 32)
    assert min(cost(g) for g in trials) < 0.25 * cost(space.default_gene())
