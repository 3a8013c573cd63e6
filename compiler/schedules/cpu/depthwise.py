"""Depthwise convolution (one filter per channel, any kernel, stride and dilation) in NCHW.

Each parallel task is one channel and a band of ``tile_y`` output rows: the padded input rows
the band needs are copied once (``conv_padding``), then a micro-kernel keeps ``tile_y x
(nvec*vec)`` outputs in registers over the fully unrolled ``kh x kw`` taps, vectorised along
the output row. The epilogue is computed on that tile before it is stored.
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
    inline_epilogue,
    pick,
    place_epilogue,
    row_tiles_wasted,
    vector_choices,
)
from edgeprune.compiler.schedules.conv_analysis import analyze_conv
from edgeprune.compiler.schedules.cpu.conv_padding import padding_block, place_padding


class DepthwiseConv(ScheduleRule):
    name = "depthwise_conv2d"

    def flops(self, wl: Workload) -> float:
        return conv_flops(wl)

    def short_name(self, wl: Workload) -> str:
        return conv_short_name(wl)

    def matches(self, func) -> Workload | None:
        found = analyze_conv(func)
        if found is None or not found[0].depthwise:
            return None
        geometry, anchor, dtype = found
        return geometry.workload("depthwise_conv2d", dtype, anchor)

    def space(self, wl: Workload) -> Space:
        taps = wl["kh"] * wl["kw"]
        tiles = [(ty, nv) for ty in (1, 2, 4) for nv in (1, 2) if taps * ty * nv <= MAX_UNROLLED_FMAS]
        return {
            "tile_y": sorted({ty for ty, _ in tiles}),
            "nvec": sorted({nv for _, nv in tiles}),
            "vec": vector_choices(self.hw),
            # a one-column output's tile loop is gone once the epilogue is placed
            "pad_at": ["rows", "tile"] if wl["ow"] > 1 else ["rows"],
        }

    def default(self, wl: Workload) -> Config:
        space = self.space(wl)
        ow, oh = wl["ow"], wl["oh"]
        vec = pick(space["vec"], lambda v: (ow % v == 0 or v <= ow, v <= ow, v))
        nvec = 2 if ow >= 2 * vec and 2 in space["nvec"] else 1
        pad_at = "rows"
        if (wl["sw"], wl["kw"]) == (2, 3) and ow >= 8:
            # Stride-2 3x3 (MobileNet's downsampling): 8-wide tiles copy just the 17 de-interleaved
            # input columns they read, right before the taps read them from L1 as unit-stride
            # vectors, rather than whole padded rows per band. Measured to pay for 3x3, not 5x5
            # (benchmarks/tuner_ga_vs_random.py measures defaults beside tuned configs).
            vec = min(8, max(space["vec"]))
            nvec, pad_at = 8 // vec, "tile"
        tile_y = pick(space["tile_y"], lambda t: (oh % t == 0, t * wl["kh"] * wl["kw"] * nvec <= MAX_UNROLLED_FMAS, t))
        if wl["co"] * math.ceil(oh / tile_y) < 4 * self.hw.cores:
            tile_y = 1
        return {"tile_y": tile_y, "nvec": nvec, "vec": vec, "pad_at": pad_at}

    def wasted(self, wl: Workload, config: Config) -> str | None:
        if wl["kh"] * wl["kw"] * config["tile_y"] * config["nvec"] > MAX_UNROLLED_FMAS:
            return "unrolled micro-kernel too large"
        return row_tiles_wasted(wl, config)

    def apply(self, sch: s_tir.Schedule, wl: Workload, config: Config) -> None:
        conv = sch.get_sblock(wl.anchor)
        pad = padding_block(sch, conv)
        out = inline_epilogue(sch, conv)
        n, f, y, x, rc, ry, rx = sch.get_loops(conv)
        yo, yi = sch.split(y, [None, config["tile_y"]])
        xo, xi, xv = sch.split(x, [None, config["nvec"], config["vec"]])
        sch.reorder(n, f, yo, xo, rc, ry, rx, yi, xi, xv)
        outer = sch.fuse(n, f, yo)
        sch.parallel(outer)
        for loop in (ry, rx, yi, xi):
            sch.unroll(loop)
        # A one-column output leaves every lane but one predicated off, which TVM refuses to
        # vectorize (TopFormer's last stage at 64x64 inputs): those loops stay scalar.
        vectorize = sch.vectorize if wl["ow"] > 1 else (lambda _: None)
        vectorize(xv)
        sch.decompose_reduction(conv, rc)
        place_epilogue(sch, out, xo, config["vec"], vectorize)
        place_padding(sch, pad, wl, outer if config["pad_at"] == "rows" else xo)
