"""What the rules for a merged pair of convs (``passes.merge_conv_groups``) share: finding the two
convs, and keeping the first one's accumulators in registers."""

from __future__ import annotations

from tvm import s_tir

from edgeprune.compiler.schedules.conv_analysis import ConvGeometry, analyze_conv, conv_anchors


def conv_pair(func) -> tuple[ConvGeometry, ConvGeometry, str, str] | None:
    """(first conv, second conv, second conv's anchor block, dtype) when ``func`` holds two convs
    and the second reads a map of the first's output size and channels."""
    anchors = conv_anchors(func)
    if len(anchors) != 2:
        return None
    first, second = analyze_conv(func, anchors[0]), analyze_conv(func, anchors[1])
    if first is None or second is None:
        return None
    if first[0].co != second[0].ci or (first[0].oh, first[0].ow) != (second[0].h, second[0].w):
        return None
    return first[0], second[0], anchors[1], second[2]


def store_through_registers(
    sch: s_tir.Schedule, conv: s_tir.schedule.SBlockRV, reader: s_tir.schedule.SBlockRV
) -> s_tir.schedule.SBlockRV:
    """Make ``conv`` accumulate in a local tile and fold its elementwise epilogue into the block
    that stores the tile, up to the block ``reader`` (which reads the result); returns the store.

    The band buffer the second conv reads is too big for LLVM to keep in registers, so the
    first conv's accumulators get a buffer of their own, sized by the tile once it is placed.
    """
    store = sch.cache_write(conv, 0, "local")
    while (consumers := sch.get_consumers(store)) and not sch.get(consumers[0]).same_as(sch.get(reader)):
        sch.reverse_compute_inline(consumers[0])
    return store
