"""Reductions of contiguous rows: a sum, max or min over the innermost axes of one input.

A global average pool (squeeze-excite's ``mean`` over ``H, W`` in NCHW, a classifier head's
pool) reduces each channel's contiguous map to one value. Left to the generic schedule it runs
one scalar accumulator per channel, serially: a chain of dependent adds, several times slower
than reading the map. Here the flattened row is split into vector lanes and the lanes are
factored out (``rfactor``): each channel accumulates one vector of partial results along its
row, then sums the vector; channels run in parallel, and the fused elementwise epilogue (the
mean's divide) runs per channel after its sum. Maps no vector width divides (49 = 7x7) keep
several unrolled scalar accumulators instead of one.
"""

from __future__ import annotations

import math

from tvm import s_tir

from edgeprune.compiler.schedules.base import (
    Config,
    ScheduleRule,
    Space,
    Workload,
    blocks_of,
    divisors,
    extents,
    iter_kinds,
    vector_choices,
)
from edgeprune.compiler.schedules.cpu.generic import PARALLEL_GRAIN, inline_spatial


def _reduction(sch: s_tir.Schedule) -> tuple[s_tir.schedule.SBlockRV, int] | None:
    """The one reduction block of ``sch`` and its count of spatial iterators, where it reduces
    the trailing axes of its one input in order and every other block is an elementwise
    epilogue over its output; else ``None``."""
    blocks = blocks_of(sch)
    reductions = [b for b in blocks if "R" in iter_kinds(sch, b)]
    if len(reductions) != 1:
        return None
    block = reductions[0]
    kinds, dims = iter_kinds(sch, block), extents(sch, block)
    spatial = len(kinds) - len(kinds.lstrip("S"))
    if dims is None or spatial == 0 or kinds[spatial:] != "R" * (len(kinds) - spatial):
        return None
    stmt = sch.get(block)
    if len(stmt.reads) != 1 or len(sch.get_loops(block)) != len(kinds):
        return None
    reduced = [iv.var for iv in stmt.iter_vars[spatial:]]
    region = stmt.reads[0].region
    if len(region) < len(reduced) or any(
        not r.min.same_as(v) or int(r.extent) != 1 for r, v in zip(region[len(region) - len(reduced):], reduced)
    ):
        return None  # not the input's innermost axes, in order: the row is not contiguous
    for other in blocks:
        if sch.get(other).same_as(stmt):
            continue
        if iter_kinds(sch, other) != "S" * len(sch.get(other).iter_vars) or extents(sch, other) != dims[:spatial]:
            return None
    return block, spatial


class RowReduction(ScheduleRule):
    name = "row_reduction"

    def matches(self, func) -> Workload | None:
        sch = s_tir.Schedule(func)
        inline_spatial(sch)
        found = _reduction(sch)
        if found is None:
            return None
        block, spatial = found
        dims = extents(sch, block)
        params = (("rows", math.prod(dims[:spatial])), ("cols", math.prod(dims[spatial:])))
        return Workload("row_reduction", params, str(sch.get(block).writes[0].source.dtype), sch.get(block).name_hint)

    def space(self, wl: Workload) -> Space:
        return {"lanes": divisors(wl["cols"], max(vector_choices(self.hw))), "parallel": [0, 1]}

    def default(self, wl: Workload) -> Config:
        lanes = self.space(wl)["lanes"]
        vectors = [v for v in vector_choices(self.hw) if v in lanes]
        return {
            "lanes": max(vectors) if vectors else max(lanes),
            "parallel": int(wl["rows"] >= 2 and wl["rows"] * wl["cols"] >= PARALLEL_GRAIN * self.hw.cores),
        }

    def apply(self, sch: s_tir.Schedule, wl: Workload, config: Config) -> None:
        inline_spatial(sch)
        block, spatial = _reduction(sch)
        epilogue = [b for b in blocks_of(sch) if not sch.get(b).same_as(sch.get(block))]
        loops = sch.get_loops(block)
        row = sch.fuse(*loops[spatial:]) if len(loops) - spatial > 1 else loops[spatial]
        _, lane = sch.split(row, [None, config["lanes"]])
        partial = sch.rfactor(lane, factor_axis=spatial)
        total = sch.get_consumers(partial)[0]
        outer_loops = sch.get_loops(partial)[:spatial]
        outer = sch.fuse(*outer_loops) if spatial > 1 else outer_loops[0]
        if config["parallel"]:
            sch.parallel(outer)
        for consumer in (total, *epilogue):
            sch.reverse_compute_at(consumer, outer)
        lay_out = sch.vectorize if config["lanes"] in vector_choices(self.hw) else sch.unroll
        lay_out(sch.get_loops(partial)[-1])  # before the init is split off: it checks the whole reduction
        init = sch.decompose_reduction(partial, sch.get_loops(partial)[1])  # outside the row's loop
        lay_out(sch.get_loops(init)[-1])
