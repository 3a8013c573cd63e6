"""General convolution (kxk, strided, dilated, grouped, or 1x1 with stride/padding) in NCHW.

Each parallel task is a band of ``tile_y`` output rows (optionally also a block of output
channels, when there are too few rows to share among the cores). The padded input rows the
band needs are copied once (``conv_padding``); the micro-kernel keeps ``tile_co x
(nvec*vec)`` outputs of one row in registers, vectorised along the row, and reduces over
input channels and taps. The epilogue runs on that tile.
"""

from __future__ import annotations

import math

from tvm import s_tir

from edgeprune.compiler.schedules.base import (
    MAX_UNROLLED_FMAS,
    Config,
    ScheduleRule,
    Space,
    Workload,
    conv_flops,
    conv_short_name,
    divisors,
    inline_epilogue,
    pick,
    place_epilogue,
    row_tiles_wasted,
    vector_choices,
)
from edgeprune.compiler.schedules.conv_analysis import analyze_conv
from edgeprune.compiler.schedules.cpu.conv_padding import padding_block, place_padding


class Conv2d(ScheduleRule):
    name = "conv2d"

    def flops(self, wl: Workload) -> float:
        return conv_flops(wl)

    def short_name(self, wl: Workload) -> str:
        return conv_short_name(wl)

    def matches(self, func) -> Workload | None:
        found = analyze_conv(func)
        if found is None or found[0].pointwise or found[0].depthwise:
            return None
        geometry, anchor, dtype = found
        return geometry.workload("conv2d", dtype, anchor)

    def space(self, wl: Workload) -> Space:
        co = wl["co"]
        return {
            "tile_co": sorted(set(divisors(co, 16)) | {v for v in (4, 8, 12, 16) if v <= co}),
            "nvec": [1, 2, 4],
            "vec": vector_choices(self.hw),
            "tile_y": [1, 2, 4, 8],
            "unroll_taps": [0, 1],
            "parallel": ["rows", "rows_channels"],
        }

    def default(self, wl: Workload) -> Config:
        # One vector per row tile, taps in a loop and bands of up to 8 rows: a taller band
        # reuses each copied padded input row for more output rows. Chosen against the tuner's
        # picks (benchmarks/tuner_ga_vs_random.py measures them beside the default).
        space = self.space(wl)
        co, oh, ow = wl["co"], wl["oh"], wl["ow"]
        vec = pick(space["vec"], lambda v: (v <= ow, ow % v == 0, v))
        tile_co = pick(space["tile_co"], lambda t: (-abs(t - 8) - 8 * (math.ceil(co / t) * t - co) / co))
        tile_y = pick(space["tile_y"], lambda t: (math.ceil(oh / t) >= 4 * self.hw.cores, oh % t == 0, t))
        parallel = "rows" if math.ceil(oh / tile_y) >= 2 * self.hw.cores else "rows_channels"
        return {"tile_co": tile_co, "nvec": 1, "vec": vec, "tile_y": tile_y, "unroll_taps": 0, "parallel": parallel}

    def wasted(self, wl: Workload, config: Config) -> str | None:
        taps = wl["kh"] * wl["kw"] if config["unroll_taps"] else 1
        if taps * config["tile_co"] * config["nvec"] > MAX_UNROLLED_FMAS:
            return "unrolled micro-kernel too large"
        return row_tiles_wasted(wl, config)

    def apply(self, sch: s_tir.Schedule, wl: Workload, config: Config) -> None:
        conv = sch.get_sblock(wl.anchor)
        pad = padding_block(sch, conv)
        out = inline_epilogue(sch, conv)
        n, f, y, x, rc, ry, rx = sch.get_loops(conv)
        yo, yi = sch.split(y, [None, config["tile_y"]])
        fo, fi = sch.split(f, [None, config["tile_co"]])
        xo, xi, xv = sch.split(x, [None, config["nvec"], config["vec"]])
        sch.reorder(n, yo, fo, yi, xo, rc, ry, rx, fi, xi, xv)
        outer = sch.fuse(n, yo) if config["parallel"] == "rows" else sch.fuse(n, yo, fo)
        sch.parallel(outer)
        for loop in (fi, xi):
            sch.unroll(loop)
        if config["unroll_taps"]:
            sch.unroll(ry)
            sch.unroll(rx)
        sch.vectorize(xv)
        sch.decompose_reduction(conv, rc)
        place_epilogue(sch, out, xo, config["vec"])
        place_padding(sch, pad, wl, outer)
