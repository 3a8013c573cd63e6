"""What the rules for a merged pair of convs (``passes.merge_conv_groups``) share: finding the two
convs, and keeping the first one's accumulators in registers."""

from __future__ import annotations

from tvm import s_tir

from edgeprune.compiler.schedules.base import NotApplicable, try_inline
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

    An epilogue that reads the result twice (hard-swish: ``x * relu6(x + 3) / 6``) gives the
    store several consumers. TVM's ``reverse_compute_inline`` then inlines one of them and
    leaves the others reading a buffer nothing writes any more (the build fails with "used
    before its definition"), so the chain is first collapsed, by forward inlining, into the one
    block that reads the result everywhere it is read.
    """
    store = sch.cache_write(conv, 0, "local")
    reader_name = sch.get(reader).name_hint
    while (consumers := sch.get_consumers(store)) and sch.get(consumers[0]).name_hint != reader_name:
        if len(consumers) == 1:
            sch.reverse_compute_inline(consumers[0])
            continue
        # Inline first the blocks that feed another consumer of the store, not the reader.
        feeding = [b for b in consumers if sch.get(b).name_hint != reader_name
                   and reader_name not in {sch.get(c).name_hint for c in sch.get_consumers(b)}]
        if not any(try_inline(sch, b) for b in feeding):
            raise NotApplicable(f"the epilogue of {sch.get(conv).name_hint} does not reduce to one block")
    return store
