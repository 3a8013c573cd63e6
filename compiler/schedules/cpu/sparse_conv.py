"""Grouped column-sparse convolution (``compiler.sparse.kernel``): one tiled loop nest per group.

Every group is scheduled like ``conv2d``'s micro-kernel: parallel over bands of ``tile_y``
output rows; per band the group's kept input columns are gathered once (an im2col of just
those columns, ``K_g x tile_y x ow``, which stays in cache) and a ``tile_r x (nvec*vec)``
register tile of outputs is accumulated over them, with the epilogue (bias, activation, the
store to the un-permuted output row) run on the tile. For a pointwise conv ``gather=0``
skips the copy and reads the kept input channels in place. The knobs are shared by all
groups; ``tile_r`` is capped by each group's row count.
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
    pick,
    vector_choices,
)
from edgeprune.compiler.sparse.kernel import recorded


class SparseConv(ScheduleRule):
    name = "sparse_conv"

    def matches(self, func) -> Workload | None:
        found = recorded(func)
        if found is None:
            return None
        geom, structure = found
        dtype = str(func.params[0].dtype)
        params = geom.workload("sparse_conv2d", dtype, "").params + (
            ("ngroups", len(structure.group_rows)),
            ("stored", structure.stored_values),
            ("sig", structure.signature),
        )
        return Workload("sparse_conv2d", params, dtype, "")

    def space(self, wl: Workload) -> Space:
        pointwise = (wl["kh"], wl["kw"], wl["sh"], wl["sw"], wl["pt"], wl["pl"]) == (1, 1, 1, 1, 0, 0)
        return {
            "tile_r": [1, 2, 4, 6, 8, 12, 16],
            "vec": vector_choices(self.hw),
            "nvec": [1, 2, 4],
            "tile_y": [1, 2, 4, 8],
            "unroll_k": [1, 2, 4],
            "gather": [0, 1] if pointwise else [1],
        }

    def default(self, wl: Workload) -> Config:
        space = self.space(wl)
        oh, ow = wl["oh"], wl["ow"]
        vec = pick(space["vec"], lambda v: (v <= ow, ow % v == 0, v))
        # 8 rows x 1 vector of accumulators over bands of 4 output rows (chosen by measurement
        # on TopFormer's 1x1 and 3x3 shapes; benchmarks/sparse_conv.py times them): the band's
        # gathered columns stay in L1/L2 while every row tile of the group reuses them.
        tile_y = pick(space["tile_y"], lambda t: (math.ceil(oh / t) >= 2 * self.hw.cores, oh % t == 0, -abs(t - 4)))
        return {"tile_r": 8, "vec": vec, "nvec": 1, "tile_y": tile_y, "unroll_k": 1, "gather": 1}

    def apply(self, sch: s_tir.Schedule, wl: Workload, config: Config) -> None:
        _, structure = recorded(sch.mod["main"])
        names = {sch.get(b).name_hint for b in sch.get_child_blocks(sch.get_sblock("root"))}
        if "pad" in names:
            pad = sch.get_sblock("pad")
            n, c, _, _ = sch.get_loops(pad)
            sch.parallel(sch.fuse(n, c))
        for index, (nrows, ncols) in enumerate(zip(structure.group_rows, structure.group_cols)):
            out = sch.get_sblock(f"out_{index}")
            if not ncols:
                n, r, y, x = sch.get_loops(out)
                sch.parallel(sch.fuse(n, r))
                continue
            self._group(sch, index, nrows, ncols, out, config)

    @staticmethod
    def _group(sch: s_tir.Schedule, index: int, nrows: int, ncols: int, out, config: Config) -> None:
        """Tile the group's output store and compute its conv and gather inside the tiles.

        Every group's ``out`` block writes the shared output, so none of them dominates it and
        ``reverse_compute_at`` refuses them: the loop nest is built on ``out`` instead, and the
        producers (which each own their buffer) are moved in with ``compute_at``.
        """
        conv, gather = sch.get_sblock(f"conv_{index}"), sch.get_sblock(f"gather_{index}")
        tile_r = min(config["tile_r"], nrows)
        n, r, y, x = sch.get_loops(out)
        yo, yi = sch.split(y, [None, config["tile_y"]])
        ro, ri = sch.split(r, [None, tile_r])
        xo, xi, xv = sch.split(x, [None, config["nvec"], config["vec"]])
        sch.reorder(n, yo, ro, yi, xo, ri, xi, xv)
        outer = sch.fuse(n, yo)
        sch.parallel(outer)
        sch.vectorize(xv)
        sch.compute_at(conv, xo, preserve_unit_loops=True)
        loops = sch.get_loops(conv)[-5:]  # n, r, y, x, j of the tile
        _, cr, cy, cx, j = loops
        cxo, cxv = sch.split(cx, [None, config["vec"]])
        unroll_k = config["unroll_k"]  # per group: only where it divides K_g and the body stays small
        if ncols % unroll_k or tile_r * config["nvec"] * unroll_k > MAX_UNROLLED_FMAS:
            unroll_k = 1
        jo, ji = sch.split(j, [None, unroll_k])
        sch.reorder(jo, ji, cr, cy, cxo, cxv)
        for loop in (ji, cr, cxo):
            sch.unroll(loop)
        sch.vectorize(cxv)
        sch.decompose_reduction(conv, jo)
        if config["gather"]:
            sch.compute_at(gather, outer)
            _, lanes = sch.split(sch.get_loops(gather)[-1], [None, config["vec"]])
            sch.vectorize(lanes)
        else:
            sch.compute_inline(gather)
