"""Bilinear / nearest ``resize2d`` (and any elementwise epilogue fused after it).

Each output element gathers up to four input elements at positions computed from its
coordinates. With ``order="rows_channel"`` the loops run ``y, x-tile, channel, x``: the
vertical index math is per row, and the horizontal index math of a tile of ``tile_x`` columns
does not depend on the channel, so LLVM hoists it out of the channel loop and only the loads
and the blend remain per element (vectorised along the tile, or unrolled). ``channel_rows``
is the plain order (one parallel task per channel row).
"""

from __future__ import annotations

from tvm import s_tir

from compiler.schedules.base import (
    Config,
    ScheduleRule,
    Space,
    Workload,
    block_named,
    extents,
    inline_epilogue,
    iter_kinds,
)

PARALLEL_MIN_ELEMENTS = 1 << 14


class Resize2d(ScheduleRule):
    name = "resize2d"

    def matches(self, func) -> Workload | None:
        sch = s_tir.Schedule(func)
        block = block_named(sch, ("resize",))
        dims = extents(sch, block) if block is not None else None
        if dims is None or iter_kinds(sch, block) != "SSSS":
            return None
        n, c, oh, ow = dims
        source = sch.get(block).reads[0].source
        h, w = (int(d) for d in source.shape[2:])
        params = (("n", n), ("c", c), ("h", h), ("w", w), ("oh", oh), ("ow", ow))
        return Workload("resize2d", params, str(sch.get(block).writes[0].source.dtype), "resize")

    def space(self, wl: Workload) -> Space:
        return {
            "order": ["rows_channel", "channel_rows"],
            "tile_x": [8, 16, 32],
            "vectorize": [0, 1],
            "parallel": [0, 1],
        }

    def default(self, wl: Workload) -> Config:
        elements = wl["n"] * wl["c"] * wl["oh"] * wl["ow"]
        tile_x = 32 if wl["ow"] >= 32 else 16
        return {"order": "rows_channel", "tile_x": tile_x, "vectorize": 1, "parallel": int(elements >= PARALLEL_MIN_ELEMENTS)}

    def apply(self, sch: s_tir.Schedule, wl: Workload, config: Config) -> None:
        block = sch.get_sblock(wl.anchor)
        out = inline_epilogue(sch, block)
        if out is not None:
            sch.compute_inline(block)
            block = out
        n, c, y, x = sch.get_loops(block)
        xo, xi = sch.split(x, [None, config["tile_x"]])
        if config["order"] == "rows_channel":
            sch.reorder(n, y, xo, c, xi)
            rows = sch.fuse(n, y)
        else:
            rows = sch.fuse(n, c, y)
        if config["parallel"]:
            sch.parallel(rows)
        if config["vectorize"]:
            sch.vectorize(xi)
        else:
            sch.unroll(xi)
