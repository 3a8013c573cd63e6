"""A depthwise conv and the pointwise (1x1) conv reading it as one kernel, band by band.

The PrimFunc comes from ``passes.fuse_depthwise_pointwise``: ``pad -> depthwise -> bias/act ->
conv1x1 -> bias/act/residual``. Each parallel task is a band of ``tile_y`` output rows: it
copies the padded input rows the band needs (all channels), computes the depthwise rows into a
small buffer (micro-kernel: ``dw_rows x vec`` outputs of one channel in registers over the
unrolled taps, its bias and activation applied on the way out), then runs the pointwise
micro-kernel (``tile_co x vec`` accumulators, reducing over the channels) on that buffer with
its epilogue. The depthwise output never goes to memory whole (4 MB in TopFormer's first block
at 512x512: 16 channels at 256x256, far beyond L2): the pointwise conv reads it from the band
buffer in cache instead of streaming it back from memory beside the residual.
"""

from __future__ import annotations

import math

from tvm import s_tir

from edgeprune.compiler.schedules.base import (
    MAX_UNROLLED_FMAS,
    Config,
    NotApplicable,
    ScheduleRule,
    Space,
    Workload,
    band_wasted,
    inline_epilogue,
    pick,
    place_epilogue,
    vector_choices,
)
from edgeprune.compiler.schedules.conv_analysis import conv_anchors
from edgeprune.compiler.schedules.cpu.conv_padding import input_rows, padding_block, place_padding
from edgeprune.compiler.schedules.cpu.conv_pair import conv_pair, store_through_registers

# Workload params: the depthwise conv's geometry (``ci`` channels) and the pointwise conv's
# output channels ``co``.
PARAMS = ("n", "ci", "h", "w", "kh", "kw", "sh", "sw", "dh", "dw", "pt", "pl", "oh", "ow", "co")
# What a task's band buffers may take: well inside a core's L2 (1-2 MB on current x86 parts).
BAND_BYTES = 512 * 1024


def band_bytes(wl: Workload, tile_y: int) -> int:
    """A task's buffers for ``tile_y`` output rows: the padded input rows and the depthwise
    output rows, all channels (``wl`` holds the depthwise conv's geometry)."""
    return 4 * wl["ci"] * (input_rows(wl, tile_y) * (wl["w"] + 2 * wl["pl"]) + tile_y * wl["ow"])


class DepthwisePointwise(ScheduleRule):
    name = "depthwise_pointwise"

    def flops(self, wl: Workload) -> float:
        """The depth-wise conv, then the pointwise conv, both over the output map."""
        return 2.0 * wl["n"] * wl["ci"] * wl["oh"] * wl["ow"] * (wl["kh"] * wl["kw"] + wl["co"])

    def matches(self, func) -> Workload | None:
        pair = conv_pair(func)
        if pair is None or not (pair[0].depthwise and pair[1].pointwise):
            return None
        d, p, anchor, dtype = pair
        values = {**{k: getattr(d, k) for k in PARAMS}, "co": p.co}
        return Workload("depthwise_pointwise", tuple((k, values[k]) for k in PARAMS), dtype, anchor)

    def space(self, wl: Workload) -> Space:
        return {
            "tile_y": [1, 2, 4, 8],
            "dw_rows": [1, 2, 4],
            "tile_co": sorted({t for t in (4, 8, 12, 16) if t <= wl["co"]} | {min(wl["co"], 16)}),
            "vec": vector_choices(self.hw),
        }

    def default(self, wl: Workload) -> Config:
        space = self.space(wl)
        co, oh, ow = wl["co"], wl["oh"], wl["ow"]
        vec = pick(space["vec"], lambda v: (v <= ow, ow % v == 0, v))
        tile_co = pick(space["tile_co"], lambda t: -abs(t - 8) / 8 - 2 * (math.ceil(co / t) * t - co) / co)
        # Tall bands copy fewer halo rows, but a task's buffers must stay in L2 and there must
        # be enough bands for the cores.
        tile_y = pick(space["tile_y"], lambda t: (
            wl["n"] * math.ceil(oh / t) >= 4 * self.hw.cores, band_bytes(wl, t) <= BAND_BYTES,
            t <= oh, oh % t == 0, t,
        ))
        return {"tile_y": tile_y, "dw_rows": min(tile_y, 2), "tile_co": tile_co, "vec": vec}

    def wasted(self, wl: Workload, config: Config) -> str | None:
        if wl["kh"] * wl["kw"] * config["dw_rows"] > MAX_UNROLLED_FMAS:
            return "unrolled depthwise micro-kernel too large"
        return band_wasted(wl, config, wl["ow"], min(vector_choices(self.hw)))

    def apply(self, sch: s_tir.Schedule, wl: Workload, config: Config) -> None:
        depthwise_name, pointwise_name = conv_anchors(sch.mod["main"])
        depthwise, pointwise = sch.get_sblock(depthwise_name), sch.get_sblock(pointwise_name)
        for producer in sch.get_producers(pointwise):
            sch.compute_inline(producer)  # the unpadded pad_temp copy of a 1x1 conv
        pad = padding_block(sch, depthwise)
        if pad is None:
            raise NotApplicable("depthwise conv reads no padding block")
        # the depthwise accumulates a dw_rows x vec tile, stored with its bias and activation applied
        store = store_through_registers(sch, depthwise, pointwise)
        out = inline_epilogue(sch, pointwise)

        tile_y, tile_co, vec = config["tile_y"], config["tile_co"], config["vec"]
        n, f, y, x, rc, ry, rx = sch.get_loops(pointwise)
        yo, yi = sch.split(y, [None, tile_y])
        fo, fi = sch.split(f, [None, tile_co])
        xo, xv = sch.split(x, [None, vec])
        sch.reorder(n, yo, fo, yi, xo, rc, ry, rx, fi, xv)
        band = sch.fuse(n, yo)
        sch.parallel(band)
        sch.unroll(fi)
        sch.vectorize(xv)
        sch.decompose_reduction(pointwise, rc)
        place_epilogue(sch, out, xo, vec)

        sch.compute_at(store, band, preserve_unit_loops=True)
        s_n, s_c, s_y, s_x = sch.get_loops(store)[-4:]
        s_yo, s_yi = sch.split(s_y, [None, config["dw_rows"]])
        s_xo, s_xv = sch.split(s_x, [None, vec])
        sch.reorder(s_n, s_c, s_yo, s_xo, s_yi, s_xv)
        sch.unroll(s_yi)
        sch.vectorize(s_xv)
        sch.compute_at(depthwise, s_xo, preserve_unit_loops=True)
        d_n, d_c, d_y, d_x, d_rc, d_ry, d_rx = sch.get_loops(depthwise)[-7:]
        sch.reorder(d_rc, d_ry, d_rx, d_n, d_c, d_y, d_x)
        for loop in (d_ry, d_rx, d_y):
            sch.unroll(loop)
        sch.vectorize(d_x)
        sch.decompose_reduction(depthwise, d_rc)
        place_padding(sch, pad, wl, band)

