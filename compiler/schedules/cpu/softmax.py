"""Softmax over the last axis (the four blocks ``passes.vector_softmax`` emits under TOPI's
names, plus any fused epilogue).

One row at a time (rows in parallel when there are enough): max, exp into a row buffer (the
exponentials are used twice), sum, and the normalised output, the elementwise parts
vectorised along the row.
"""

from __future__ import annotations

import math

from tvm import s_tir

from edgeprune.compiler.schedules.base import (
    Config,
    ScheduleRule,
    Space,
    Workload,
    block_named,
    extents,
    inline_epilogue,
    vector_choices,
)

PARALLEL_MIN_ELEMENTS = 1 << 14


class Softmax(ScheduleRule):
    name = "softmax"

    def matches(self, func) -> Workload | None:
        sch = s_tir.Schedule(func)
        norm = block_named(sch, ("T_softmax_norm",))
        if norm is None or any(block_named(sch, (n,)) is None for n in ("T_softmax_maxelem", "T_softmax_exp", "T_softmax_expsum")):
            return None
        dims = extents(sch, norm)
        if dims is None:
            return None
        axis = sch.get(norm).annotations.get("axis")
        if axis is None or int(axis) not in (-1, len(dims) - 1):
            return None  # a softmax over an inner axis reads strided rows; leave it to generic
        params = (("rows", math.prod(dims[:-1])), ("cols", dims[-1]))
        return Workload("softmax", params, str(sch.get(norm).writes[0].source.dtype), "T_softmax_norm")

    def space(self, wl: Workload) -> Space:
        return {"vec": [1, *vector_choices(self.hw)], "parallel": [0, 1]}

    def default(self, wl: Workload) -> Config:
        cols = wl["cols"]
        vec = max([1] + [v for v in vector_choices(self.hw) if cols % v == 0])
        return {"vec": vec, "parallel": int(wl["rows"] * cols >= PARALLEL_MIN_ELEMENTS)}

    def wasted(self, wl: Workload, config: Config) -> str | None:
        if config["vec"] > 1 and wl["cols"] % config["vec"]:
            return "vector width does not divide the row (the rule would not vectorise)"
        return None

    def apply(self, sch: s_tir.Schedule, wl: Workload, config: Config) -> None:
        maxelem, exp, expsum = (sch.get_sblock(n) for n in ("T_softmax_maxelem", "T_softmax_exp", "T_softmax_expsum"))
        norm = sch.get_sblock("T_softmax_norm")
        out = inline_epilogue(sch, norm)
        if out is not None:
            sch.compute_inline(norm)
        else:
            out = norm
        loops = sch.get_loops(out)
        row = sch.fuse(*loops[:-1]) if len(loops) > 2 else loops[0]
        if config["parallel"]:
            sch.parallel(row)
        for block in (expsum, exp, maxelem):
            sch.compute_at(block, row)
        vec = config["vec"]
        if vec > 1:
            for block in (exp, out):
                last = sch.get_loops(block)[-1]
                if int(sch.get(last).extent) % vec == 0:
                    _, lanes = sch.split(last, [None, vec])
                    sch.vectorize(lanes)
