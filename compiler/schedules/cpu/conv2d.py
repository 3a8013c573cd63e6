"""General convolution (kxk, strided, dilated, grouped, or 1x1 with stride/padding) in NCHW.

Each parallel task is a band of ``tile_y`` output rows (optionally also a block of output
channels, when there are too few rows to share among the cores). The padded input rows the
band needs are copied once (``conv_padding``); the micro-kernel keeps ``tile_co x reg_rows x
(nvec*vec)`` outputs (``reg_rows`` consecutive rows) in registers, vectorised along the row,
and reduces over input channels and taps. The epilogue runs on that tile. Several rows in
registers fill the register file where a row is a single vector (14- and 16-column maps).
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
            "reg_rows": [1, 2, 4],
            "unroll_taps": [0, 1],
            "parallel": ["rows", "rows_channels"],
        }

    def default(self, wl: Workload) -> Config:
        # The widest vector that divides the row, and about half the vector registers
        # accumulating (fewer leave the FMA units waiting on each other's latency). Stride 1:
        # a tile of up to 4 rows x 4 output channels, so each step loads 4 input vectors and
        # broadcasts 4 weights for 16 FMAs (one row x 16 channels needs 17 loads for 16 FMAs and
        # is bound by the load ports). Strided convs read de-interleaved input rows
        # (``conv_padding``) and do better on one row, 2 vectors x 8 channels. Parallel tasks
        # are bands of rows, at least two per core: a task that also splits channels copies its
        # band's padded input again for every channel tile. Bands of up to 8 rows: a taller band
        # reuses each copied padded input row for more output rows. Checked against the tuner's
        # picks (benchmarks/tuner_ga_vs_random.py measures them beside the default).
        space = self.space(wl)
        co, oh, ow = wl["co"], wl["oh"], wl["ow"]
        bands = 2 * self.hw.cores
        vec = pick(space["vec"], lambda v: (v <= ow, ow % v == 0, v))
        strided = wl["sh"] > 1 or wl["sw"] > 1
        nvec = 2 if strided and ow >= 2 * vec else 1
        reg_rows = 1 if strided else pick(space["reg_rows"], lambda r: (math.ceil(oh / r) >= bands, r))
        accumulators = self.hw.vector_registers // 2
        tile_co = pick(space["tile_co"], lambda t: (
            -abs(t - accumulators // (reg_rows * nvec)) - 8 * (math.ceil(co / t) * t - co) / co
        ))
        tile_y = pick([t for t in space["tile_y"] if t % reg_rows == 0],
                      lambda t: (math.ceil(oh / t) >= bands, oh % t == 0, t))
        parallel = "rows" if math.ceil(oh / tile_y) >= bands else "rows_channels"
        return {"tile_co": tile_co, "nvec": nvec, "vec": vec, "tile_y": tile_y, "reg_rows": reg_rows, "unroll_taps": 0,
                "parallel": parallel}

    def wasted(self, wl: Workload, config: Config) -> str | None:
        taps = wl["kh"] * wl["kw"] if config["unroll_taps"] else 1
        if taps * config["tile_co"] * config["nvec"] * config["reg_rows"] > MAX_UNROLLED_FMAS:
            return "unrolled micro-kernel too large"
        if config["tile_y"] % config["reg_rows"]:
            return "register rows do not divide the band"
        return row_tiles_wasted(wl, config)

    def apply(self, sch: s_tir.Schedule, wl: Workload, config: Config) -> None:
        conv = sch.get_sblock(wl.anchor)
        pad = padding_block(sch, conv)
        out = inline_epilogue(sch, conv)
        n, f, y, x, rc, ry, rx = sch.get_loops(conv)
        reg_rows = math.gcd(config["tile_y"], config["reg_rows"])  # a wasted config still builds
        yo, yi, yr = sch.split(y, [None, config["tile_y"] // reg_rows, reg_rows])
        fo, fi = sch.split(f, [None, config["tile_co"]])
        xo, xi, xv = sch.split(x, [None, config["nvec"], config["vec"]])
        sch.reorder(n, yo, fo, yi, xo, rc, ry, rx, fi, yr, xi, xv)
        outer = sch.fuse(n, yo) if config["parallel"] == "rows" else sch.fuse(n, yo, fo)
        sch.parallel(outer)
        for loop in (fi, yr, xi):
            sch.unroll(loop)
        if config["unroll_taps"]:
            sch.unroll(ry)
            sch.unroll(rx)
        sch.vectorize(xv)
        sch.decompose_reduction(conv, rc)
        place_epilogue(sch, out, xo, config["vec"])
        place_padding(sch, pad, wl, outer)
