"""Batched matmul / dense (``matmul`` from LegalizeOps), as in attention and linear layers.

``C[b, i, j] = sum_k A[b, i, k] * B[b, k, j]``: a register tile of ``tile_i x (nvec*vec)``
outputs is vectorised along ``j`` (contiguous in ``B`` and ``C``), broadcasting ``A``; the
batch and tile loops are fused and run in parallel when the product is big enough. The fused
epilogue (bias, activation) runs on the tile.
"""

from __future__ import annotations

import math

from tvm import s_tir

from edgeprune.compiler.schedules.base import (
    Config,
    NotApplicable,
    ScheduleRule,
    Space,
    Workload,
    block_named,
    extents,
    inline_epilogue,
    iter_kinds,
    pick,
    place_epilogue,
    round_up,
    vector_choices,
)

ANCHORS = ("matmul", "NT_matmul", "T_matmul", "T_matmul_NT")
# Multiply-adds below which one thread beats a parallel launch.
PARALLEL_MIN_MACS = 1 << 17


class Matmul(ScheduleRule):
    name = "matmul"

    def flops(self, wl: Workload) -> float:
        return 2.0 * wl["batch"] * wl["m"] * wl["n"] * wl["k"]

    def short_name(self, wl: Workload) -> str:
        return f"matmul {wl['batch']}x{wl['m']}x{wl['k']}x{wl['n']}"

    def matches(self, func) -> Workload | None:
        sch = s_tir.Schedule(func)
        block = block_named(sch, ANCHORS)
        if block is None:
            return None
        kinds = iter_kinds(sch, block)
        if not kinds.endswith("SSR") or set(kinds[:-3]) - {"S"}:
            return None
        dims = extents(sch, block)
        if dims is None:
            return None
        batch = math.prod(dims[:-3])
        m, n, k = dims[-3:]
        params = (("batch", batch), ("batch_dims", len(dims) - 3), ("m", m), ("n", n), ("k", k))
        return Workload("matmul", params, str(sch.get(block).writes[0].source.dtype), sch.get(block).name_hint)

    def space(self, wl: Workload) -> Space:
        return {
            "tile_i": [t for t in (1, 2, 4, 6, 8, 12, 16) if t <= max(wl["m"], 1)],
            "nvec": [1, 2, 4],
            "vec": vector_choices(self.hw),
            "parallel": [0, 1],
        }

    def default(self, wl: Workload) -> Config:
        space = self.space(wl)
        m, n = wl["m"], wl["n"]
        vec = pick(space["vec"], lambda v: (n % v == 0, v <= n, v))
        nvec = pick(space["nvec"], lambda c: (n % (c * vec) == 0, -abs(c - 2)))
        tile_i = pick(space["tile_i"], lambda t: (m % t == 0, -abs(t * nvec - 12)))
        macs = wl["batch"] * m * n * wl["k"]
        return {"tile_i": tile_i, "nvec": nvec, "vec": vec, "parallel": int(macs >= PARALLEL_MIN_MACS)}

    def wasted(self, wl: Workload, config: Config) -> str | None:
        if config["nvec"] > 1 and config["nvec"] * config["vec"] > round_up(wl["n"], config["vec"]):
            return "column tile wider than the matrix"
        return None

    def apply(self, sch: s_tir.Schedule, wl: Workload, config: Config) -> None:
        block = sch.get_sblock(wl.anchor)
        for producer in sch.get_producers(block):
            try:
                sch.compute_inline(producer)
            except s_tir.schedule.ScheduleError as exc:
                raise NotApplicable(f"matmul producer does not inline: {exc}") from exc
        out = inline_epilogue(sch, block)
        loops = sch.get_loops(block)
        batch_loops, (i, j, k) = loops[:-3], loops[-3:]
        io, ii = sch.split(i, [None, config["tile_i"]])
        jo, jv, jl = sch.split(j, [None, config["nvec"], config["vec"]])
        sch.reorder(*batch_loops, io, jo, k, ii, jv, jl)
        outer = sch.fuse(*batch_loops, io, jo)
        if config["parallel"]:
            sch.parallel(outer)
        sch.unroll(ii)
        sch.unroll(jv)
        sch.vectorize(jl)
        sch.decompose_reduction(block, k)
        place_epilogue(sch, out, outer, config["vec"])
