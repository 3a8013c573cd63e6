"""Random search: the default first, then uniformly drawn valid genes never tried before.

The baseline the genetic algorithm has to beat at the same trial budget.
"""

from __future__ import annotations

from edgeprune.compiler.tuner.space import Gene, SearchSpace
from edgeprune.compiler.tuner.strategy import Strategy


class RandomSearch(Strategy):
    name = "random"

    def __init__(self, space: SearchSpace, seed: int = 0, batch: int = 8) -> None:
        super().__init__(space, seed)
        self.batch = batch

    def propose(self) -> list[Gene]:
        if not self.proposed:
            return self._first_batch(self.batch)
        batch = []
        while len(batch) < self.batch and (gene := self._random_new()) is not None:
            batch.append(gene)
        return batch
