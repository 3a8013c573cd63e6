"""``resize2d`` (and any elementwise epilogue fused after it), in its two legalized forms.

``Resize2d`` schedules TOPI's one-block resize (nearest, bicubic, and whatever
``compiler.passes.separable_resize`` leaves to TVM): each output element gathers its inputs at
positions computed from its coordinates. With ``order="rows_channel"`` the loops run ``y,
x-tile, channel, x``: the vertical index math is per row, and the horizontal index math of a
tile of ``tile_x`` columns does not depend on the channel, so LLVM hoists it out of the channel
loop and only the loads and the blend remain per element (vectorised along the tile, or
unrolled). ``channel_rows`` is the plain order (one parallel task per channel row).

``SeparableResize2d`` schedules the two-pass bilinear form (``resize_rows`` blends along the
width for every input row, ``resize`` blends two of those rows). With ``stage="channel"`` a
parallel task is one channel: its ``h x ow`` blended rows are computed into a small buffer
that stays in cache, then the output rows are read from it with unit-stride vector loads.
``stage="whole"`` runs the passes one after the other, each parallel over rows: for few
channels (a one-class output) that still splits the work over the cores.

``ResizeRows`` schedules the width pass alone, left as its own kernel where the height pass went
into a conv's epilogue. Its loops run ``row chunk, x-tile, row, x``: a parallel task is a chunk
of rows, and the column index math of a tile, the same for every row, is hoisted out of the row
loop; the gathers are vectorised. A chunk of rows, not one row, per task keeps each task
long enough to pay for its dispatch to a thread.
"""

from __future__ import annotations

from tvm import s_tir

from edgeprune.compiler.passes.separable_resize import OUT_BLOCK, ROWS_BLOCK
from edgeprune.compiler.schedules.base import (
    Config,
    ScheduleRule,
    Space,
    Workload,
    block_named,
    extents,
    inline_epilogue,
    iter_kinds,
    vector_choices,
)
from edgeprune.compiler.target import Hardware

PARALLEL_MIN_ELEMENTS = 1 << 14


def resize_workload(func, op: str, separable: bool) -> Workload | None:  # noqa: ANN001 - PrimFunc
    """``op``'s workload when ``func`` holds a ``resize`` block in the asked form: fed by a
    ``resize_rows`` block (separable) or reading the input itself (TOPI's)."""
    sch = s_tir.Schedule(func)
    block = block_named(sch, (OUT_BLOCK,))
    dims = extents(sch, block) if block is not None else None
    if dims is None or iter_kinds(sch, block) != "SSSS":
        return None
    rows = block_named(sch, (ROWS_BLOCK,))
    if (rows is not None) != separable:
        return None
    source = sch.get(rows if rows is not None else block).reads[0].source
    n, c, oh, ow = dims
    h, w = (int(d) for d in source.shape[2:])
    params = (("n", n), ("c", c), ("h", h), ("w", w), ("oh", oh), ("ow", ow))
    return Workload(op, params, str(sch.get(block).writes[0].source.dtype), OUT_BLOCK)


def output_block(sch: s_tir.Schedule, block: s_tir.schedule.SBlockRV) -> s_tir.schedule.SBlockRV:
    """The block that writes the function's output once the epilogue is folded into it."""
    # the resize is inlined into that block, which then computes every point itself (a concat's too)
    out = inline_epilogue(sch, block, under_anchor=False)
    if out is None:
        return block
    sch.compute_inline(block)
    return out


def _row_vector(hw: Hardware, width: int) -> int:
    """The widest vector no wider than an output row of ``width`` columns (the narrowest if none)."""
    lanes = vector_choices(hw)
    return max([v for v in lanes if v <= width] or [lanes[0]])


def _vector_wider_than_row(hw: Hardware, vec: int, width: int) -> str | None:
    if vec > min(vector_choices(hw)) and vec // 2 >= width:
        return "vector wider than the output row"
    return None


class Resize2d(ScheduleRule):
    name = "resize2d"

    def matches(self, func) -> Workload | None:
        return resize_workload(func, "resize2d", separable=False)

    def space(self, wl: Workload) -> Space:
        return {
            "order": ["rows_channel", "channel_rows"],
            "tile_x": [8, 16, 32],
            "vectorize": [0, 1],
            "parallel": [0, 1],
        }

    def wasted(self, wl: Workload, config: Config) -> str | None:
        if config["tile_x"] > 8 and config["tile_x"] // 2 >= wl["ow"]:
            return "column tile wider than the output row"
        return None

    def default(self, wl: Workload) -> Config:
        elements = wl["n"] * wl["c"] * wl["oh"] * wl["ow"]
        tile_x = 32 if wl["ow"] >= 32 else 16
        return {"order": "rows_channel", "tile_x": tile_x, "vectorize": 1, "parallel": int(elements >= PARALLEL_MIN_ELEMENTS)}

    def apply(self, sch: s_tir.Schedule, wl: Workload, config: Config) -> None:
        block = output_block(sch, sch.get_sblock(wl.anchor))
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


class SeparableResize2d(ScheduleRule):
    name = "resize2d_separable"

    def matches(self, func) -> Workload | None:
        return resize_workload(func, "resize2d_separable", separable=True)

    def space(self, wl: Workload) -> Space:
        return {"stage": ["channel", "whole"], "vec": vector_choices(self.hw), "gather_vec": [0, 1]}

    def wasted(self, wl: Workload, config: Config) -> str | None:
        return _vector_wider_than_row(self.hw, config["vec"], wl["ow"])

    def default(self, wl: Workload) -> Config:
        stage = "channel" if wl["n"] * wl["c"] >= 4 * self.hw.cores else "whole"
        return {"stage": stage, "vec": _row_vector(self.hw, wl["ow"]), "gather_vec": 0}

    def apply(self, sch: s_tir.Schedule, wl: Workload, config: Config) -> None:
        rows = sch.get_sblock(ROWS_BLOCK)
        out = output_block(sch, sch.get_sblock(wl.anchor))
        n, c, y, x = sch.get_loops(out)
        _, xv = sch.split(x, [None, config["vec"]])
        sch.vectorize(xv)
        if config["stage"] == "channel":
            channel = sch.fuse(n, c)
            sch.parallel(channel)
            sch.compute_at(rows, channel)
            row_x = sch.get_loops(rows)[-1]
        else:
            sch.parallel(sch.fuse(n, c, y))
            rn, rc, ry, row_x = sch.get_loops(rows)
            sch.parallel(sch.fuse(rn, rc, ry))
        _, rv = sch.split(row_x, [None, config["vec"]])
        if config["gather_vec"]:
            sch.vectorize(rv)


class ResizeRows(ScheduleRule):
    name = "resize_rows"

    def matches(self, func) -> Workload | None:  # noqa: ANN001 - PrimFunc
        sch = s_tir.Schedule(func)
        block = block_named(sch, (ROWS_BLOCK,))
        dims = extents(sch, block) if block is not None else None
        if dims is None or iter_kinds(sch, block) != "SSSS" or block_named(sch, (OUT_BLOCK,)) is not None:
            return None
        n, c, h, ow = dims
        w = int(sch.get(block).reads[0].source.shape[3])
        params = (("n", n), ("c", c), ("h", h), ("w", w), ("ow", ow))
        return Workload("resize_rows", params, str(sch.get(block).writes[0].source.dtype), ROWS_BLOCK)

    def space(self, wl: Workload) -> Space:
        return {"vec": vector_choices(self.hw), "tasks_per_core": [1, 2, 4], "gather_vec": [0, 1]}

    def wasted(self, wl: Workload, config: Config) -> str | None:
        if config["tasks_per_core"] > 1 and config["tasks_per_core"] * self.hw.cores > wl["n"] * wl["c"] * wl["h"]:
            return "more tasks than rows"
        return _vector_wider_than_row(self.hw, config["vec"], wl["ow"])

    def default(self, wl: Workload) -> Config:
        return {"vec": _row_vector(self.hw, wl["ow"]), "tasks_per_core": 1, "gather_vec": 1}

    def apply(self, sch: s_tir.Schedule, wl: Workload, config: Config) -> None:
        block = output_block(sch, sch.get_sblock(wl.anchor))
        n, c, y, x = sch.get_loops(block)
        rows = sch.fuse(n, c, y)
        tasks = min(config["tasks_per_core"] * self.hw.cores, wl["n"] * wl["c"] * wl["h"])
        chunk, row = sch.split(rows, [tasks, None])
        tile, lanes = sch.split(x, [None, config["vec"]])
        sch.reorder(chunk, tile, row, lanes)
        sch.parallel(chunk)
        if config["gather_vec"]:
            sch.vectorize(lanes)
        else:
            sch.unroll(lanes)
