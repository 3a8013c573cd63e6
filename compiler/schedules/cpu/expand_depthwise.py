"""An inverted residual's expand 1x1 conv and its depthwise conv as one kernel, band by band.

The PrimFunc comes from ``passes.fuse_expand_depthwise``: ``conv1x1 -> bias/act -> pad ->
depthwise -> bias/act``. Each parallel task is a block of ``tile_c`` expanded channels and a
band of ``tile_y`` depthwise output rows. It first computes the expanded rows the band reads
(``(tile_y - 1) * stride + kh`` of them, so bands overlap by ``kh - stride`` recomputed rows)
into a small buffer, the expand's bias and activation applied while they are padded into
place, then runs the depthwise micro-kernel of ``depthwise.py`` over them. The expanded map
never goes to memory whole: at TopFormer-Tiny's first stage it is 16.7 MB.

The expand's micro-kernel keeps ``tile_c`` channels x ``vec`` columns of one row in registers
and reduces over the input channels; the buffer layout is the depthwise's padded one.

With stride 2 the depthwise reads every other column, which LLVM turns into one scalar load
per element, and de-interleaving the expanded rows in the padded copy is as scalar. With
``deinterleave`` the input band (4-6x fewer channels than the expanded rows) is copied with its
columns de-interleaved (even, then odd) once per band, the expand computes the even and then
the odd columns from it, and every later step (the store into the padded band, the depthwise's
reads) runs on unit-stride vectors. The input copy is then shared by all the band's channel
blocks, so the parallel tasks are the bands alone.
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
    divisors,
    inline_epilogue,
    pick,
    place_epilogue,
    vector_choices,
)
from edgeprune.compiler.schedules.conv_analysis import conv_anchors
from edgeprune.compiler.schedules.cpu.conv_padding import column_phases, input_rows, padding_block
from edgeprune.compiler.schedules.cpu.conv_pair import conv_pair, store_through_registers

# Workload params: the depthwise conv's geometry and the expand's input channels.
# What a task's band buffers may take: well inside a core's L2 (1-2 MB on current x86 parts).
BAND_BYTES = 1024 * 1024
PARAMS = ("n", "cin", "h", "w", "ce", "kh", "kw", "sh", "sw", "dh", "dw", "pt", "pl", "oh", "ow")


class ExpandDepthwise(ScheduleRule):
    name = "expand_depthwise"

    def flops(self, wl: Workload) -> float:
        """The expand 1x1 conv over the input map, then the depth-wise conv over the output map."""
        expand = wl["ce"] * wl["h"] * wl["w"] * wl["cin"]
        return 2.0 * wl["n"] * (expand + wl["ce"] * wl["oh"] * wl["ow"] * wl["kh"] * wl["kw"])

    def matches(self, func) -> Workload | None:
        pair = conv_pair(func)
        if pair is None or not (pair[0].pointwise and pair[1].depthwise):
            return None
        e, d, anchor, dtype = pair
        values = {**{k: getattr(d, k) for k in PARAMS if hasattr(d, k)}, "cin": e.ci, "ce": e.co}
        return Workload("expand_depthwise", tuple((k, values[k]) for k in PARAMS), dtype, anchor)

    def space(self, wl: Workload) -> Space:
        ce = wl["ce"]
        return {
            "tile_c": sorted(set(divisors(ce, 32)) | {v for v in (4, 8, 16) if v <= ce}),
            "tile_y": [1, 2, 4, 8, 16],
            "dw_rows": [1, 2, 4],
            "vec": vector_choices(self.hw),
            "deinterleave": [0, 1] if wl["sw"] > 1 and wl["w"] % wl["sw"] == 0 else [0],
        }

    def default(self, wl: Workload) -> Config:
        space = self.space(wl)
        ce, oh, ow, w = wl["ce"], wl["oh"], wl["ow"], wl["w"]
        vec = pick(space["vec"], lambda v: (v <= min(ow, w), w % v == 0, v))
        tile_c = pick(space["tile_c"], lambda t: (-abs(t - 16) - 16 * (math.ceil(ce / t) * t - ce) / ce))
        deinterleave = max(space["deinterleave"])
        # Tall bands recompute fewer halo rows, but a task's band buffers must stay in L2 and
        # there must be enough tasks for the cores (bands alone when de-interleaving). Stride-2
        # 5x5 blocks recompute 38% of their expand with 4-row bands, 19% with 8, so the pick
        # needs only one task per core and then takes the tallest band: more tasks would only
        # shorten the bands and add recomputed rows (benchmarks/compiler_vs_ort.py measures it).
        blocks = 1 if deinterleave else math.ceil(ce / tile_c)
        tasks = lambda t: wl["n"] * blocks * math.ceil(oh / t)  # noqa: E731
        tile_y = pick(space["tile_y"], lambda t: (
            # TVM splits a parallel loop into equal chunks, one per thread: more tasks than
            # threads only help when the count does not divide evenly
            tasks(t) >= self.hw.cores and (tasks(t) % self.hw.cores == 0 or tasks(t) >= 4 * self.hw.cores),
            self._band_bytes(wl, tile_c, t, deinterleave) <= BAND_BYTES, t <= oh, oh % t == 0, t,
        ))
        return {"tile_c": tile_c, "tile_y": tile_y, "dw_rows": min(tile_y, 2), "vec": vec, "deinterleave": deinterleave}

    @staticmethod
    def _band_bytes(wl: Workload, tile_c: int, tile_y: int, deinterleave: int) -> int:
        """A task's buffers: expanded rows, padded rows (and the de-interleaved input rows)."""
        channels = 2 * tile_c + (wl["cin"] if deinterleave else 0)
        return 4 * channels * input_rows(wl, tile_y) * (wl["w"] + 2 * wl["pl"])

    def wasted(self, wl: Workload, config: Config) -> str | None:
        if config["tile_c"] > MAX_UNROLLED_FMAS // 8:
            return "unrolled micro-kernel too large"
        if config["dw_rows"] > config["tile_y"]:
            return "dw_rows above tile_y: the schedule of dw_rows = tile_y"
        return band_wasted(wl, config, max(wl["w"], wl["ow"]), min(vector_choices(self.hw)))

    def apply(self, sch: s_tir.Schedule, wl: Workload, config: Config) -> None:
        expand_name, depthwise_name = conv_anchors(sch.mod["main"])
        expand, depthwise = sch.get_sblock(expand_name), sch.get_sblock(depthwise_name)
        for producer in sch.get_producers(expand):
            sch.compute_inline(producer)  # the unpadded pad_temp copy of a 1x1 conv
        pad = padding_block(sch, depthwise)
        if pad is None:
            raise NotApplicable("depthwise conv reads no padding block")
        # the expand accumulates a tile_c x vec tile, stored with its bias and activation applied
        store = store_through_registers(sch, expand, pad)
        out = inline_epilogue(sch, depthwise)

        stride = wl["sw"]
        padded_width = int(sch.get(pad).writes[0].source.shape[-1])
        # a padded width that is no multiple of the stride (asymmetric padding) keeps the plain layout
        deinterleave = config["deinterleave"] and padded_width % stride == 0
        tile_c, tile_y, vec = config["tile_c"], config["tile_y"], config["vec"]
        n, f, y, x, rc, ry, rx = sch.get_loops(depthwise)
        fo, fi = sch.split(f, [None, tile_c])
        yo, yi = sch.split(y, [None, tile_y])
        # More rows per step than the band has would place the epilogue over the next band's rows
        # too, rows another task computes: a race that wrote stale values.
        yio, yii = sch.split(yi, [None, min(config["dw_rows"], tile_y)])
        xo, xv = sch.split(x, [None, vec])
        # Bands outermost: a thread runs a band's channel blocks back to back, so the input rows
        # they all read stay in its cache.
        sch.reorder(n, yo, fo, fi, yio, xo, rc, ry, rx, yii, xv)
        band = sch.fuse(n, yo) if deinterleave else sch.fuse(n, yo, fo)
        outer = fo if deinterleave else band
        sch.parallel(band)
        for loop in (ry, rx, yii):
            sch.unroll(loop)
        sch.vectorize(xv)
        sch.decompose_reduction(depthwise, rc)
        place_epilogue(sch, out, xo, vec)

        copy_in = _deinterleave_columns(sch, wl, expand, store, pad) if deinterleave else None
        sch.compute_at(pad, outer, preserve_unit_loops=True)
        sch.compute_at(store, outer, preserve_unit_loops=True)
        # columns are one loop, or (phase, column) when de-interleaved
        s_n, s_f, s_y, *s_cols = sch.get_loops(store)[-(5 if deinterleave else 4):]
        s_xo, s_xv = sch.split(s_cols[-1], [None, vec])
        sch.reorder(s_n, s_y, *s_cols[:-1], s_xo, s_f, s_xv)
        sch.vectorize(s_xv)
        sch.unroll(s_f)  # constant indices into the local tile, which LLVM then keeps in registers
        sch.compute_at(expand, s_xo, preserve_unit_loops=True)
        e_n, e_f, e_y, *e_cols, e_rc, e_ry, e_rx = sch.get_loops(expand)[-(8 if deinterleave else 7):]
        sch.reorder(e_rc, e_ry, e_rx, e_n, e_y, *e_cols[:-1], e_f, e_cols[-1])
        sch.unroll(e_f)
        sch.vectorize(e_cols[-1])
        sch.decompose_reduction(expand, e_rc)
        if copy_in is not None:
            sch.compute_at(copy_in, band, preserve_unit_loops=True)


def _deinterleave_columns(
    sch: s_tir.Schedule, wl: Workload, expand: s_tir.schedule.SBlockRV, store: s_tir.schedule.SBlockRV,
    pad: s_tir.schedule.SBlockRV,
) -> s_tir.schedule.SBlockRV:
    """Columns split by phase (``w % stride``, then ``w // stride``) in the padded band, the
    expand's output tile and a copy of its input, and the blocks writing them iterate that way.
    Returns the block copying the input."""
    phases = column_phases(wl["sw"])
    sch.transform_layout(pad, ("write", 0), phases)
    for block in (store, pad):
        sch.transform_block_layout(block, phases)
    sch.transform_block_layout(expand, lambda n, c, h, w, rc, ry, rx: (*phases(n, c, h, w), rc, ry, rx))
    for block in (store, expand):
        sch.transform_layout(block, ("write", 0), phases)
    data_shape = [wl["n"], wl["cin"], wl["h"], wl["w"]]
    index = next(i for i, r in enumerate(sch.get(expand).reads) if [int(d) for d in r.source.shape] == data_shape)
    copy_in = sch.cache_read(expand, index, "global")
    sch.transform_layout(copy_in, ("write", 0), phases)
    sch.transform_block_layout(copy_in, phases)
    # transform_layout leaves the expand reading the copy at (2j + q) % 2, (2j + q) // 2; a
    # block-layout pass simplifies that to (q, j) with the iterators' bounds, so it vectorizes
    sch.transform_block_layout(expand, lambda n, c, h, q, j, rc, ry, rx: (n, c, h, q, j, rc, ry, rx))
    return copy_in
