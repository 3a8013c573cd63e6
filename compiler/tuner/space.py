"""The search space of one workload: its rule's knobs as genes, and which genes are worth building.

A gene is a tuple of indices, one per knob, into the value lists ``rule.space(wl)`` declares
(in the rule's knob order), so crossover and mutation work on any rule without knowing what
the knobs mean. ``SearchSpace.invalid`` rejects, before anything is built, combinations the
rule would accept knob by knob but that are not worth a trial: unrolled bodies above
``MAX_UNROLLED_FMAS`` (they take tens of seconds to compile and spill registers), and tiles
wider than the axis they tile or vector widths that do not divide the axis where the rule
then silently falls back to another code path (a duplicate of another gene).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from compiler.schedules.base import MAX_UNROLLED_FMAS, Config, ScheduleRule, Workload

Gene = tuple[int, ...]


def _round_up(n: int, multiple: int) -> int:
    return math.ceil(n / multiple) * multiple


def _conv1x1(wl: Workload, c: Config) -> str | None:
    if c["tile_co"] * c["nvec"] * c["unroll_k"] > MAX_UNROLLED_FMAS:
        return "unrolled micro-kernel too large"
    if c["nvec"] > 1 and c["nvec"] * c["vec"] > _round_up(wl["oh"] * wl["ow"], c["vec"]):
        return "spatial tile wider than the feature map"
    return None


def _conv2d(wl: Workload, c: Config) -> str | None:
    taps = wl["kh"] * wl["kw"] if c["unroll_taps"] else 1
    if taps * c["tile_co"] * c["nvec"] > MAX_UNROLLED_FMAS:
        return "unrolled micro-kernel too large"
    if c["nvec"] > 1 and c["nvec"] * c["vec"] > _round_up(wl["ow"], c["vec"]):
        return "row tile wider than the output row"
    if c["tile_y"] > 1 and c["tile_y"] > wl["oh"]:
        return "row band taller than the output"
    return None


def _depthwise(wl: Workload, c: Config) -> str | None:
    if wl["kh"] * wl["kw"] * c["tile_y"] * c["nvec"] > MAX_UNROLLED_FMAS:
        return "unrolled micro-kernel too large"
    if c["nvec"] > 1 and c["nvec"] * c["vec"] > _round_up(wl["ow"], c["vec"]):
        return "row tile wider than the output row"
    if c["tile_y"] > 1 and c["tile_y"] > wl["oh"]:
        return "row band taller than the output"
    return None


def _matmul(wl: Workload, c: Config) -> str | None:
    if c["nvec"] > 1 and c["nvec"] * c["vec"] > _round_up(wl["n"], c["vec"]):
        return "column tile wider than the matrix"
    return None


def _softmax(wl: Workload, c: Config) -> str | None:
    if c["vec"] > 1 and wl["cols"] % c["vec"]:
        return "vector width does not divide the row (the rule would not vectorise)"
    return None


def _resize(wl: Workload, c: Config) -> str | None:
    if c["tile_x"] > 8 and c["tile_x"] // 2 >= wl["ow"]:
        return "column tile wider than the output row"
    return None


# Per rule name; a rule without an entry accepts every combination of its knobs.
CONSTRAINTS: dict[str, Callable[[Workload, Config], str | None]] = {
    "conv1x1": _conv1x1,
    "conv2d": _conv2d,
    "depthwise_conv2d": _depthwise,
    "matmul": _matmul,
    "softmax": _softmax,
    "resize2d": _resize,
}


class SearchSpace:
    """Knob space of ``rule`` for ``wl``, with gene <-> config conversion and validity."""

    def __init__(self, rule: ScheduleRule, wl: Workload) -> None:
        self.rule = rule
        self.workload = wl
        space = rule.space(wl)
        self.knobs: tuple[str, ...] = tuple(space)
        self.values: tuple[tuple, ...] = tuple(tuple(space[k]) for k in self.knobs)
        self._constraint = CONSTRAINTS.get(rule.name)

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
        return self._constraint(self.workload, self.config(gene)) if self._constraint else None

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
