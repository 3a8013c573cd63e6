"""A synthetic rule and fitness landscape: the GA tests run thousands of trials in milliseconds."""

from __future__ import annotations

from edgeprune.compiler.schedules.base import Config, ScheduleRule, Space, Workload
from edgeprune.compiler.target import Hardware
from edgeprune.compiler.tuner.space import SearchSpace

WORKLOAD = Workload("synthetic", (("n", 1),), "float32")


class LandscapeRule(ScheduleRule):
    """``knobs`` knobs of ``values`` values each; the default is the all-zero gene."""

    name = "landscape"

    def __init__(self, knobs: int = 6, values: int = 8) -> None:
        super().__init__(Hardware(vector_lanes=16, cores=2))
        self.knobs, self.values = knobs, values

    def matches(self, func) -> Workload | None:
        return None

    def space(self, wl: Workload) -> Space:
        return {f"k{i}": list(range(self.values)) for i in range(self.knobs)}

    def default(self, wl: Workload) -> Config:
        return {f"k{i}": 0 for i in range(self.knobs)}

    def apply(self, sch, wl: Workload, config: Config) -> None:
        raise NotImplementedError


def landscape_space(knobs: int = 6, values: int = 8) -> SearchSpace:
    return SearchSpace(LandscapeRule(knobs, values), WORKLOAD)


def cost(gene: tuple[int, ...]) -> float:
    """A rugged landscape with structure: per-knob optima (3, 5, 1, 6, 2, 4, ...) and a pairwise
    coupling, plus a deterministic pseudo-random ripple that makes neighbours differ."""
    optima = [3, 5, 1, 6, 2, 4, 7, 0]
    base = sum((g - optima[i % len(optima)]) ** 2 for i, g in enumerate(gene))
    coupling = sum(abs(gene[i] - gene[i + 1]) for i in range(0, len(gene) - 1, 2))
    ripple = ((sum((i + 3) * g * 2654435761 for i, g in enumerate(gene)) >> 7) % 97) / 97.0
    return 1.0 + base + 0.5 * coupling + 2.0 * ripple


def run_search(strategy, budget: int) -> list[tuple[int, ...]]:
    """Drive ``strategy`` with ``cost`` for ``budget`` trials; the genes in trial order."""
    trials: list[tuple[int, ...]] = []
    while len(trials) < budget:
        batch = strategy.propose()
        if not batch:
            break
        for gene in batch[: budget - len(trials)]:
            strategy.tell(gene, cost(gene))
            trials.append(gene)
    return trials
