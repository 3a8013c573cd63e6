"""Pointwise (1x1, stride 1, unpadded, ungrouped) convolution as a register-tiled GEMM in NCHW.

``out[f, s] = sum_c w[f, c] * x[c, s]`` over the flattened spatial index ``s = y*W + x``, which
NCHW keeps contiguous: a micro-kernel holds ``tile_co x (nvec*vec)`` accumulators in vector
registers, and per input channel loads ``nvec`` vectors of ``x`` and broadcasts ``tile_co``
weights. No layout change is needed (the spatial axis is the vector axis), so the fused
epilogue (bias, activation, residual add) runs on the tile while it is in registers. With
``panel > 0`` each parallel task first packs ``panel`` micro-tiles' worth of the input, all
channels, into a contiguous buffer (GEMM-style packing; see ``_packed``).

The conv and epilogue blocks are re-indexed over ``s`` (and the conv's intermediate buffer
flattened to ``(n, f, s)``) so that a tile of ``s`` is an exact region: tiling ``y`` and ``x``
separately would make the tile's region a bounding box when it crosses rows. A map that is no
whole number of tiles (7x7 = 49, 14x14 = 196 in classification backbones) is computed over a
zero-padded copy rounded up to whole tiles (``_pad_spatial``): a ragged last tile would make TVM
run the whole micro-kernel as scalars.
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
    downstream_blocks,
    extents,
    full_size_side_inputs,
    inline_epilogue,
    is_output,
    pick,
    place_epilogue,
    round_up,
    try_inline,
    vector_choices,
)
from edgeprune.compiler.schedules.conv_analysis import analyze_conv
from edgeprune.compiler.schedules.cpu.generic import schedule_loops


class Conv1x1(ScheduleRule):
    name = "conv1x1"

    def flops(self, wl: Workload) -> float:
        return conv_flops(wl)

    def short_name(self, wl: Workload) -> str:
        return conv_short_name(wl)

    def matches(self, func) -> Workload | None:
        found = analyze_conv(func)
        if found is None or not found[0].pointwise:
            return None
        geometry, anchor, dtype = found
        shape = geometry.workload("conv2d_1x1", dtype, anchor)
        return Workload(shape.op, (*shape.params, ("side", full_size_side_inputs(func, anchor))), dtype, anchor)

    def space(self, wl: Workload) -> Space:
        co, ci = wl["co"], wl["ci"]
        return {
            "tile_co": sorted(set(divisors(co, 16)) | {v for v in (4, 6, 8, 12, 16) if v <= co}),
            "vec": vector_choices(self.hw),
            "nvec": [1, 2, 3, 4],
            "unroll_k": [u for u in (1, 2, 4) if ci % u == 0],
            "order": ["spatial", "channel"],
            "panel": [0, 2, 4, 8],
        }

    def default(self, wl: Workload) -> Config:
        space = self.space(wl)
        co, size = wl["co"], wl["oh"] * wl["ow"]
        # Lanes doing useful work per vector: a map that no width divides is padded to whole
        # vectors (``_pad_spatial``), so a wide vector with a little padding beats a narrow exact one.
        vec = pick(space["vec"], lambda v: (v * size / round_up(size, v), -v))

        def score_tile(t: int) -> float:
            # ~12-16 accumulators (6x2 or 8x1 vectors): enough independent FMAs to hide their
            # latency, with registers left for the loaded input vectors and broadcast weights;
            # wasted rows in the last channel tile cost like idle lanes.
            waste = (math.ceil(co / t) * t - co) / co
            return -abs(t - 8) / 8 - 2 * waste

        if wl["side"] >= 2 and size >= 4 * vec:
            # An epilogue streaming several full-size maps reads them in 256-byte runs per channel
            # (4 channels x 4 vectors) instead of 64-byte ones: fewer, longer streams for the
            # hardware prefetcher. (TopFormer's injected resizes do not count here: their height
            # passes run in the epilogue on the small width-blended maps, side=0.)
            tile_co, nvec, unroll_k = 4, 4, max(space["unroll_k"])
        else:
            tile_co, unroll_k = pick(space["tile_co"], score_tile), 1
            # A map of at most 4 vectors (7x7 on 16 lanes) is read whole by every channel tile,
            # and every weight is re-read once per spatial tile: two vectors per tile halve the
            # weight traffic, which dominates on such maps, at no extra padding.
            few_vectors = size <= 4 * vec and round_up(size, 2 * vec) == round_up(size, vec)
            nvec = 2 if (tile_co <= 6 or few_vectors) and size >= 2 * vec else 1
        # Packing panels of 4 micro-tiles gives the micro-kernel one contiguous input stream
        # instead of ``ci`` pages (see ``_packed``), as long as there are enough panels to keep
        # the cores busy; tiny maps split channels among cores instead. It pays only where the
        # input has more channels than the output: a panel's task writes every output channel
        # of its panel, ``co`` scattered short runs, and an expanding conv's time is in those
        # writes, which the unpacked tasks make as long runs along the map, a channel tile at a time.
        micro_tiles = math.ceil(size / (nvec * vec))
        panel = next((p for p in (4, 2) if math.ceil(micro_tiles / p) >= 4 * self.hw.cores), 0) if wl["ci"] > co else 0
        if not panel and nvec > 1 and math.ceil(co / tile_co) * micro_tiles < 4 * self.hw.cores:
            nvec = 1
        if self._padded(wl, {"vec": vec, "nvec": nvec}):
            panel = 0  # a padded map is copied into a flat buffer anyway (``_pad_spatial``)
        order = "channel" if panel else "spatial"
        return {"tile_co": tile_co, "vec": vec, "nvec": nvec, "unroll_k": unroll_k, "order": order, "panel": panel}

    def wasted(self, wl: Workload, config: Config) -> str | None:
        if config["tile_co"] * config["nvec"] * config["unroll_k"] > MAX_UNROLLED_FMAS:
            return "unrolled micro-kernel too large"
        if config["nvec"] > 1 and config["nvec"] * config["vec"] > round_up(wl["oh"] * wl["ow"], config["vec"]):
            return "spatial tile wider than the feature map"
        if config["panel"] and self._padded(wl, config):
            return "panel packing on a padded map (its flat padded copy stands in)"
        return None

    def apply(self, sch: s_tir.Schedule, wl: Workload, config: Config) -> None:
        conv = sch.get_sblock(wl.anchor)
        for producer in sch.get_producers(conv):
            sch.compute_inline(producer)  # the unpadded pad_temp copy
        out = None if self._broadcast_epilogue(sch, conv, config["vec"]) else inline_epilogue(sch, conv)
        width = wl["ow"]
        flat = lambda n, c, h, w: (n, c, h * width + w)  # noqa: E731
        padded = self._padded(wl, config)
        if out is None and padded:
            out = sch.cache_write(conv, 0, "global")  # the copy out of the padded result is the epilogue
        if out is not None:
            sch.transform_layout(conv, ("write", 0), flat)
            sch.transform_block_layout(out, flat)
        sch.transform_block_layout(conv, lambda n, c, h, w, rc, ry, rx: (n, c, h * width + w, rc, ry, rx))
        if padded:
            self._pad_spatial(sch, conv, wl, config["nvec"] * config["vec"], flat)
            self._direct(sch, conv, out, config)
        elif config["panel"]:
            self._packed(sch, conv, out, wl, config, flat)
        else:
            self._direct(sch, conv, out, config)

    @staticmethod
    def _broadcast_epilogue(sch: s_tir.Schedule, conv, vec: int) -> bool:
        """Schedule an epilogue that broadcasts the conv's result over a larger map (a
        squeeze-excite gate: a 1x1 map of channel weights times the block's features), if it
        is one; whether it was.

        The broadcast is its own loop nest, over its own shape, after the conv; the elementwise
        blocks at the conv's own shape (the gate's bias and activation) collapse into one block
        between them. Inlined into the broadcast, the activation (a sigmoid's exponential) would
        be computed again for every point of the map instead of once per channel.
        """
        shape = extents(sch, conv)[:4]
        downstream = downstream_blocks(sch, conv)
        if not downstream or extents(sch, downstream[-1]) == shape:
            return False
        while True:
            at_shape = [b for b in downstream_blocks(sch, conv) if extents(sch, b) == shape]
            inlinable = [b for b in at_shape if all(extents(sch, c) == shape for c in sch.get_consumers(b))]
            if not any(try_inline(sch, b) for b in inlinable):
                break
        while any(try_inline(sch, b) for b in downstream_blocks(sch, conv)
                  if extents(sch, b) != shape and not is_output(sch, b)):
            pass
        for block in downstream_blocks(sch, conv):
            schedule_loops(sch, block, vec, parallel=extents(sch, block) != shape)
        return True

    @staticmethod
    def _padded(wl: Workload, config: Config) -> bool:
        """Whether the map is padded to whole spatial tiles (``_pad_spatial``): a map smaller than
        one vector (a squeeze-excite gate's 1x1) has no vector loop to lose to a predicate."""
        size = wl["oh"] * wl["ow"]
        return size >= config["vec"] and size % (config["nvec"] * config["vec"]) != 0

    def _direct(self, sch: s_tir.Schedule, conv, out, config: Config) -> None:
        """One parallel task per micro-tile, reading the input in place."""
        n, f, s, rc, ry, rx = sch.get_loops(conv)
        fo, fi = sch.split(f, [None, config["tile_co"]])
        so, svo, sv = sch.split(s, [None, config["nvec"], config["vec"]])
        rco, rci = sch.split(rc, [None, config["unroll_k"]])
        if config["order"] == "spatial":
            sch.reorder(n, so, fo, rco, ry, rx, rci, fi, svo, sv)
            outer = sch.fuse(n, so, fo)
        else:
            sch.reorder(n, fo, so, rco, ry, rx, rci, fi, svo, sv)
            outer = sch.fuse(n, fo, so)
        sch.parallel(outer)
        self._micro_kernel(sch, conv, out, config, rci, fi, svo, sv, rco, outer)

    @staticmethod
    def _data_index(sch: s_tir.Schedule, conv, wl: Workload) -> int:
        """Which of the conv's reads is the input feature map."""
        return next(
            i for i, region in enumerate(sch.get(conv).reads)
            if len(region.region) == 4 and region.source.name not in (sch.get(conv).writes[0].source.name,)
            and int(region.source.shape[1]) == wl["ci"] and int(region.source.shape[0]) == wl["n"]
        )

    @staticmethod
    def _pad_spatial(sch: s_tir.Schedule, conv, wl: Workload, tile: int, flat) -> None:
        """Compute over the spatial axis rounded up to whole tiles (the epilogue stops at the map's end).

        A tile that ends past the map would need a predicate on the vector lanes, and TVM
        scalarises any vectorised loop under a lane-dependent predicate (its buffer-level
        predication does not cover the broadcast weight loads). So the input is copied, once per
        call, into a flat buffer zero-padded to whole tiles (``pad_einsum``), the micro-kernel runs
        unpredicated over it, and only the epilogue stops at the map's end. The copy is one pass
        over the input against ``co`` passes of the micro-kernel.
        """
        flat_input = sch.cache_read(conv, Conv1x1._data_index(sch, conv, wl), "global", consumer_blocks=[conv])
        sch.transform_layout(flat_input, ("write", 0), flat)
        sch.transform_block_layout(flat_input, flat)
        sch.pad_einsum(conv, [1, 1, tile, 1, 1, 1])
        padded_input = sch.get_consumers(flat_input)[0]
        sch.compute_inline(flat_input)
        sch.compute_inline(sch.get_consumers(conv)[0])  # the epilogue reads the padded result
        channels = sch.get_loops(padded_input)[1]
        sch.decompose_padding(padded_input, channels)  # per channel: a zero fill, then a plain copy
        sch.parallel(channels)

    def _packed(self, sch: s_tir.Schedule, conv, out, wl: Workload, config: Config, flat) -> None:
        """One parallel task per panel of ``panel`` micro-tiles of the spatial axis.

        The task first copies its panel of the input (all channels) into a contiguous
        buffer: in NCHW a large feature map puts every channel's slice of a panel on another
        page, and the micro-kernel would stream from ``ci`` pages at once.
        """
        data_index = self._data_index(sch, conv, wl)
        # Only the conv reads the panel: an epilogue that adds the conv's own input (``x + conv(x)``)
        # keeps reading it in place, since it is computed after the panel's loop, not inside it.
        panel = sch.cache_read(conv, data_index, "global", consumer_blocks=[conv])
        sch.transform_layout(panel, ("write", 0), flat)
        sch.transform_block_layout(panel, flat)  # iterate the flat index: exact panel regions
        n, f, s, rc, ry, rx = sch.get_loops(conv)
        fo, fi = sch.split(f, [None, config["tile_co"]])
        so, sm, svo, sv = sch.split(s, [None, config["panel"], config["nvec"], config["vec"]])
        rco, rci = sch.split(rc, [None, config["unroll_k"]])
        if config["order"] == "spatial":
            sch.reorder(n, so, sm, fo, rco, ry, rx, rci, fi, svo, sv)
            tile = fo
        else:
            sch.reorder(n, so, fo, sm, rco, ry, rx, rci, fi, svo, sv)
            tile = sm
        outer = sch.fuse(n, so)
        sch.parallel(outer)
        sch.compute_at(panel, outer)
        copy_loops = sch.get_loops(panel)
        _, lanes = sch.split(copy_loops[-1], [None, config["vec"]])
        sch.vectorize(lanes)
        self._micro_kernel(sch, conv, out, config, rci, fi, svo, sv, rco, tile)

    @staticmethod
    def _micro_kernel(sch: s_tir.Schedule, conv, out, config: Config, rci, fi, svo, sv, rco, tile) -> None:
        """Registers: unrolled ``tile_co x nvec`` vectors; epilogue on the tile at ``tile``."""
        for loop in (rci, fi, svo):
            sch.unroll(loop)
        sch.vectorize(sv)
        sch.decompose_reduction(conv, rco)
        place_epilogue(sch, out, tile, config["vec"])
