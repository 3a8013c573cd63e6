"""The ask/tell interface every search strategy shares, and the bookkeeping they all need.

``propose()`` returns the next batch of genes to try (valid and never proposed before);
``tell(gene, cost)`` reports a latency in milliseconds (``math.inf`` for a failed candidate).
The driver measures proposals it has no result for and answers the others from the tuning
log, so a strategy replayed with the same seed against the log of an interrupted run walks
the same path without measuring anything twice, then continues where the run stopped.
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod

from edgeprune.compiler.tuner.space import Gene, SearchSpace

# Draws of random genes before concluding that the space has no unvisited valid gene left.
MAX_DRAWS = 2000


class Strategy(ABC):
    name = ""

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        self.space = space
        self.rng = random.Random(seed)
        self.proposed: set[Gene] = set()
        self.costs: dict[Gene, float] = {}
        self._exhausted = False

    @abstractmethod
    def propose(self) -> list[Gene]:
        """The next batch of new genes; empty once the space holds no unvisited valid gene."""

    def tell(self, gene: Gene, cost: float) -> None:
        self.costs[gene] = cost

    @property
    def best(self) -> tuple[Gene, float] | None:
        finite = [(c, g) for g, c in self.costs.items() if math.isfinite(c)]
        if not finite:
            return None
        cost, gene = min(finite)
        return gene, cost

    def _claim(self, gene: Gene) -> bool:
        """Take ``gene`` if it is valid and new."""
        if gene in self.proposed or self.space.invalid(gene) is not None:
            return False
        self.proposed.add(gene)
        return True

    def _random_new(self) -> Gene | None:
        """A valid gene never proposed, drawn uniformly; ``None`` when none can be found."""
        if self._exhausted:
            return None
        for _ in range(MAX_DRAWS):
            gene = self.space.random_gene(self.rng)
            if self._claim(gene):
                return gene
        # Sparse leftovers: enumerate them if the space is small enough, else give up.
        if self.space.size <= 1 << 16:
            left = [g for g in self.space.valid_genes() if g not in self.proposed]
            if left:
                gene = self.rng.choice(left)
                self.proposed.add(gene)
                return gene
        self._exhausted = True
        return None

    def _first_batch(self, size: int) -> list[Gene]:
        """The rule's default (the baseline every result is compared with), then random genes."""
        batch = []
        default = self.space.default_gene()
        if default not in self.proposed:
            self.proposed.add(default)  # measured even if a constraint would reject it
            batch.append(default)
        while len(batch) < size:
            gene = self._random_new()
            if gene is None:
                break
            batch.append(gene)
        return batch
