"""Fallback for any PrimFunc no specific rule takes: elementwise, injective, reductions.

Spatial producers are inlined into their consumers; every remaining block gets its outer
spatial loops fused and run in parallel (when there is enough work to pay the thread launch)
and its innermost spatial loop vectorised (when its extent splits into whole vectors).
Reduction loops stay serial inside.
"""

from __future__ import annotations

import tvm
from tvm import s_tir

from edgeprune.compiler.schedules.base import (
    Config,
    ScheduleRule,
    Space,
    Workload,
    blocks_of,
    is_output,
    iter_kinds,
    output_workload,
    vector_choices,
)

# Below this many output elements per core a parallel launch costs more than it saves.
PARALLEL_GRAIN = 4096


def _output_elements(func: tvm.tirx.PrimFunc) -> int:
    shape = func.params[-1].shape
    total = 1
    for d in shape:
        total *= int(d)
    return total


class Generic(ScheduleRule):
    name = "generic"

    def matches(self, func) -> Workload | None:
        return output_workload("generic", func)

    def space(self, wl: Workload) -> Space:
        return {"vec": [1, *vector_choices(self.hw)], "parallel": [0, 1]}

    def default(self, wl: Workload) -> Config:
        elements = 1
        for k, v in wl.params:
            if k.startswith("d"):
                elements *= v
        return {"vec": self.hw.vector_lanes, "parallel": int(elements >= PARALLEL_GRAIN * self.hw.cores)}

    def apply(self, sch: s_tir.Schedule, wl: Workload, config: Config) -> None:
        inline_spatial(sch)
        for block in list(sch.get_child_blocks(sch.get_sblock("root"))):
            schedule_loops(sch, block, config["vec"], bool(config["parallel"]))


def inline_spatial(sch: s_tir.Schedule) -> None:
    """Inline every spatial, non-output block that TVM allows to inline."""
    changed = True
    while changed:
        changed = False
        for block in blocks_of(sch):
            if is_output(sch, block) or "R" in iter_kinds(sch, block):
                continue
            try:
                sch.compute_inline(block)
                changed = True
                break
            except s_tir.schedule.ScheduleError:
                continue


def schedule_loops(sch: s_tir.Schedule, block, vec: int, parallel: bool) -> None:
    """Parallelise the leading spatial loops of ``block`` and vectorise its last spatial loop."""
    loops = sch.get_loops(block)
    kinds = iter_kinds(sch, block)
    if len(loops) != len(kinds) or not loops:
        return  # loops already transformed, or a scalar block
    spatial = len(kinds) - len(kinds.lstrip("S")) if kinds.startswith("S") else 0
    if spatial == 0:
        return
    lead = loops[:spatial]
    inner_extent = int(sch.get(lead[-1]).extent)
    # Whole vectors only: a predicated tail would scalarise the loop. Halve vec until it fits.
    width = next((v for v in (vec, vec // 2, vec // 4) if v >= 4 and inner_extent % v == 0), 0)
    vectorize = spatial == len(kinds) and vec > 1 and width > 0
    if vectorize:
        rest, lanes = sch.split(lead[-1], [None, width])
        lead = [*lead[:-1], rest]
    outer = sch.fuse(*lead) if len(lead) > 1 else lead[0]
    if parallel:
        sch.parallel(outer)
    if vectorize:
        sch.vectorize(lanes)
