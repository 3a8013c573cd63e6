"""Reductions over a few elements: depth-wise convolutions, small pools, 1-element reductions.

One thread per output element computes the whole reduction in a register, then the fused
epilogue (bias, activation): the usual depth-wise schedule on mobile GPUs. TVM 0.27's rules do
worse on these: ``GeneralReduction`` gives each output a work group of up to 256 threads that
share 9 (3x3) or 25 (5x5) products through local memory, ``Reduction`` launches work groups
of 4 threads for a 2x2 pool, and ``Fallback`` computes a reduction over one element wrong:
it drops the unit loops, reverse-inlines the epilogue into the block, and TIR then applies the
epilogue to the reduction's init as well as its update (bias added twice, ReLU on the partial
sum; ``edgeprune check`` reports it as a mismatch).

Producers (padding) are inlined into the reduction, and the elementwise epilogue chain into
its last block, which runs per thread after the reduction (``reverse_compute_at``). An epilogue
with points that read no reduced value (a pad after a pool, BlazeFace's) is left to the next rule:
those points would get no thread.
"""

from __future__ import annotations

import math

from tvm import s_tir, tirx
from tvm.s_tir.dlight.analysis import get_root_block, get_sblock_info
from tvm.s_tir.dlight.base import ScheduleRule
from tvm.target import Target

from edgeprune.compiler.schedules.base import reads_past

MAX_REDUCE = 64  # products per output: 5x5 depth-wise (25), 7x7 (49), 2x2..8x8 pools


def _reduce_extent(sch: s_tir.Schedule, block: s_tir.schedule.SBlockRV) -> int | None:
    """Elements reduced per output, if static."""
    doms = [it.dom for it in get_sblock_info(sch, block).iters if it.kind == "R"]
    if not doms or not all(isinstance(d, (int, tirx.IntImm)) for d in doms):
        return None
    return math.prod(int(d) for d in doms)


class SmallReduction(ScheduleRule):
    """One thread per output of a reduction over at most ``MAX_REDUCE`` elements."""

    def apply(self, func: tirx.PrimFunc, target: Target, _: bool) -> s_tir.Schedule | None:
        if not isinstance(func, tirx.PrimFunc) or "gpu" not in target.keys:
            return None
        sch = s_tir.Schedule(func)
        blocks = sch.get_child_blocks(get_root_block(sch))
        reductions = [b for b in blocks if get_sblock_info(sch, b).is_reduction()]
        if len(reductions) != 1:
            return None
        (reduction,) = reductions
        extent = _reduce_extent(sch, reduction)
        if extent is None or extent > MAX_REDUCE:
            return None
        position = [sch.get(b).name_hint for b in blocks].index(sch.get(reduction).name_hint)
        try:
            for producer in blocks[:position]:
                sch.compute_inline(producer)
            epilogue = blocks[position + 1:]
            for block in epilogue[:-1]:
                sch.compute_inline(block)
        except s_tir.ScheduleError:
            return None
        if epilogue and reads_past(sch, epilogue[-1], sch.get(reduction).writes[0].source):
            return None
        max_threads = int(target.attrs.get("max_threads_per_block", 256))
        loops = sch.get_loops(reduction)
        kinds = get_sblock_info(sch, reduction).dom_kind()
        spatial = [loop for loop, kind in zip(loops, kinds) if kind == "S"]
        reduce = [loop for loop, kind in zip(loops, kinds) if kind != "S"]
        if not spatial:
            return None
        sch.reorder(*spatial, *reduce)
        bx, tx = sch.split(sch.fuse(*spatial), factors=[None, max_threads])
        sch.bind(bx, "blockIdx.x")
        sch.bind(tx, "threadIdx.x")
        if epilogue:
            sch.reverse_compute_at(epilogue[-1], tx, preserve_unit_loops=True)
            sch.set_scope(reduction, 0, "local")
        sch.decompose_reduction(reduction, reduce[0])
        return sch
