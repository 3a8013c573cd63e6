"""The search space of one workload: its rule's knobs as genes, and which genes are worth building.

A gene is a tuple of indices, one per knob, into the value lists ``rule.space(wl)`` declares
(in the rule's knob order), so crossover and mutation work on any rule without knowing what
the knobs mean. ``SearchSpace.invalid`` rejects, before anything is built, genes outside the
space and combinations the rule would accept knob by knob but declares not worth a trial
(``Rule.wasted``: huge unrolled bodies, tiles wider than their axis, duplicates).
"""

from __future__ import annotations

import math
import random

from edgeprune.compiler.schedules.base import Config, Rule, Workload

Gene = tuple[int, ...]


class SearchSpace:
    """Knob space of ``rule`` for ``wl``, with gene <-> config conversion and validity."""

    def __init__(self, rule: Rule, wl: Workload) -> None:
        self.rule = rule
        self.workload = wl
        space = rule.space(wl)
        self.knobs: tuple[str, ...] = tuple(space)
        self.values: tuple[tuple, ...] = tuple(tuple(space[k]) for k in self.knobs)

    @property
    def size(self) -> int:
        """Number of genes, valid or not."""
        return math.prod(len(v) for v in self.values)

    def config(self, gene: Gene) -> Config:
        return {knob: values[i] for knob, values, i in zip(self.knobs, self.values, gene)}

    def gene(self, config: Config) -> Gene:
        """The gene of a (complete) config; ``ValueError`` if a value is outside the space."""
        try:
            return tuple(values.index(config[knob]) for knob, values in zip(self.knobs, self.values))
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{self.rule.name}: config {config} is not in the space ({exc})") from exc

    def default_gene(self) -> Gene:
        return self.gene(self.rule.check_config(self.workload, {}))

    def invalid(self, gene: Gene) -> str | None:
        """Why ``gene`` is not worth building, or ``None``."""
        if len(gene) != len(self.knobs) or any(not 0 <= i < len(v) for i, v in zip(gene, self.values)):
            return "gene outside the space"
        return self.rule.wasted(self.workload, self.config(gene))

    def random_gene(self, rng: random.Random) -> Gene:
        """A uniformly drawn gene (possibly invalid)."""
        return tuple(rng.randrange(len(v)) for v in self.values)

    def valid_count(self) -> int:
        """Number of valid genes (the raw size for spaces too large to enumerate)."""
        return len(self.valid_genes()) if self.size <= 1 << 16 else self.size

    def valid_genes(self, limit: int = 1 << 16) -> list[Gene]:
        """Every valid gene, in order (only for spaces up to ``limit`` genes)."""
        if self.size > limit:
            raise ValueError(f"space of {self.size} genes is too large to enumerate")
        genes: list[Gene] = [()]
        for values in self.values:
            genes = [g + (i,) for g in genes for i in range(len(values))]
        return [g for g in genes if self.invalid(g) is None]
