"""2-D pooling: average, max, adaptive average/max (and their padding block).

Pooling reads every input element about once and does one add per read, so it is
memory-bound: channels (and output rows) run in parallel, the window reduction stays scalar,
and padding is inlined (its bounds test costs less than a second pass over the input).
"""

from __future__ import annotations

from tvm import s_tir

from edgeprune.compiler.schedules.base import (
    Config,
    ScheduleRule,
    Space,
    Workload,
    blocks_of,
    extents,
    inline_epilogue,
    iter_kinds,
)

ANCHORS = ("pool_sum", "pool_max", "adaptive_pool_sum", "adaptive_pool_max")
PARALLEL_MIN_ELEMENTS = 1 << 14


class Pool2d(ScheduleRule):
    name = "pool2d"

    def matches(self, func) -> Workload | None:
        sch = s_tir.Schedule(func)
        for block in blocks_of(sch):
            name = sch.get(block).name_hint
            dims = extents(sch, block)
            if name in ANCHORS and iter_kinds(sch, block) == "SSSSRR" and dims is not None:
                n, c, oh, ow, kh, kw = dims
                source = sch.get(block).reads[0].source
                h, w = (int(d) for d in source.shape[2:])
                params = (("n", n), ("c", c), ("h", h), ("w", w), ("oh", oh), ("ow", ow), ("kh", kh), ("kw", kw))
                return Workload(name, params, str(sch.get(block).writes[0].source.dtype), name)
        return None

    def space(self, wl: Workload) -> Space:
        return {"parallel": ["none", "channels", "rows"]}

    def default(self, wl: Workload) -> Config:
        elements = wl["n"] * wl["c"] * wl["h"] * wl["w"]
        if elements < PARALLEL_MIN_ELEMENTS:
            return {"parallel": "none"}
        return {"parallel": "channels" if wl["n"] * wl["c"] >= 4 * self.hw.cores else "rows"}

    def apply(self, sch: s_tir.Schedule, wl: Workload, config: Config) -> None:
        anchor = sch.get_sblock(wl.anchor)
        for producer in sch.get_producers(anchor):
            sch.compute_inline(producer)
        out = inline_epilogue(sch, anchor)
        n, c, oh, _, _, _ = sch.get_loops(anchor)
        outer = sch.fuse(n, c, oh) if config["parallel"] == "rows" else sch.fuse(n, c)
        if config["parallel"] != "none":
            sch.parallel(outer)
        if out is not None:
            sch.reverse_compute_at(out, outer)
