"""A genetic algorithm over knob genes.

Generation 0 is the rule's default plus random valid genes. Every later generation keeps the
``elite`` best individuals of the current population unchanged (they are not measured again)
and fills the rest with children: two parents picked by tournament (the fastest of
``tournament`` individuals drawn at random), uniform crossover (each knob from either
parent), then per-knob mutation to another allowed value. A child that is invalid or was
proposed before is bred again, with mutation forced, a bounded number of times before a
random new gene takes its place, so no gene is ever proposed twice. Failed candidates cost
``inf`` and so never win a tournament against a working one.

Everything random comes from one ``random.Random(seed)``, so the same seed and the same
costs give the same proposals.
"""

from __future__ import annotations

import math

from edgeprune.compiler.tuner.space import Gene, SearchSpace
from edgeprune.compiler.tuner.strategy import Strategy

BREED_ATTEMPTS = 30


class GeneticSearch(Strategy):
    name = "ga"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        population: int = 8,
        elite: int = 2,
        tournament: int = 3,
        mutation: float | None = None,
    ) -> None:
        super().__init__(space, seed)
        if not 0 <= elite < population:
            raise ValueError(f"elite ({elite}) must be smaller than the population ({population})")
        self.population_size = population
        self.elite = elite
        self.tournament = tournament
        # One knob changed per child on average.
        self.mutation = mutation if mutation is not None else 1.0 / max(1, len(space.knobs))
        self.population: list[tuple[float, Gene]] = []
        self._batch: list[Gene] = []

    def propose(self) -> list[Gene]:
        if not self.proposed:
            self._batch = self._first_batch(self.population_size)
            return list(self._batch)
        scored = [(self.costs.get(g, math.inf), g) for g in self._batch]
        self.population = sorted(self.population[: self.elite] + scored)[: self.population_size]
        batch: list[Gene] = []
        while len(batch) < self.population_size - self.elite:
            child = self._breed()
            if child is None:
                break
            batch.append(child)
        self._batch = batch
        return list(batch)

    def _breed(self) -> Gene | None:
        for attempt in range(BREED_ATTEMPTS):
            a, b = self._select(), self._select()
            child = tuple(x if self.rng.random() < 0.5 else y for x, y in zip(a, b))
            child = self._mutate(child, force=attempt > 0 or child in (a, b))
            if self._claim(child):
                return child
        return self._random_new()

    def _select(self) -> Gene:
        contenders = [self.rng.choice(self.population) for _ in range(self.tournament)]
        return min(contenders)[1]

    def _mutate(self, gene: Gene, force: bool) -> Gene:
        out = list(gene)
        changed = False
        for i, values in enumerate(self.space.values):
            if len(values) > 1 and self.rng.random() < self.mutation:
                out[i] = self._other(i, out[i])
                changed = True
        if force and not changed:
            movable = [i for i, v in enumerate(self.space.values) if len(v) > 1]
            if movable:
                i = self.rng.choice(movable)
                out[i] = self._other(i, out[i])
        return tuple(out)

    def _other(self, knob: int, current: int) -> int:
        choice = self.rng.randrange(len(self.space.values[knob]) - 1)
        return choice + 1 if choice >= current else choice
