"""Where a conv's ``pad_temp`` block goes: inlined, or materialised per tile (de-interleaved).

Inlining the padding puts a bounds test in every load of the inner loop; instead the padded
rows a tile needs are copied into a small buffer at the parallel loop. For a horizontal stride
``s > 1`` that buffer is stored de-interleaved, ``(n, c, h, w % s, w // s)``, so the inner
loop's ``x*s + rx*d`` loads become unit-stride vector loads.
"""

from __future__ import annotations

from collections.abc import Callable

from tvm import s_tir

from edgeprune.compiler.schedules.base import Workload


def column_phases(stride: int) -> Callable[..., tuple]:
    """The de-interleaved layout's index map: ``(n, c, h, w) -> (n, c, h, w % stride, w // stride)``."""
    return lambda n, c, h, w: (n, c, h, w % stride, w // stride)


def input_rows(wl: Workload, out_rows: int) -> int:
    """How many consecutive (padded) input rows ``out_rows`` consecutive output rows read."""
    return (out_rows - 1) * wl["sh"] + (wl["kh"] - 1) * wl["dh"] + 1


def padding_block(sch: s_tir.Schedule, conv: s_tir.schedule.SBlockRV) -> s_tir.schedule.SBlockRV | None:
    """The ``pad_temp`` block feeding ``conv`` (call before ``decompose_reduction``)."""
    producers = sch.get_producers(conv)
    return producers[0] if producers else None


def place_padding(sch: s_tir.Schedule, pad: s_tir.schedule.SBlockRV | None, wl: Workload, loop) -> None:
    """Inline a pure-copy ``pad_temp``, or compute it under ``loop`` in a stride-friendly layout."""
    if pad is None:
        return
    if wl["pt"] == 0 and wl["pl"] == 0 and wl["sw"] == 1 and _no_trailing_pad(wl):
        sch.compute_inline(pad)
        return
    stride = wl["sw"]
    if stride > 1:
        # pad_value: a padded width that is no multiple of the stride leaves unused slots.
        sch.transform_layout(pad, ("write", 0), column_phases(stride), pad_value=0.0)
    sch.compute_at(pad, loop)


def _no_trailing_pad(wl: Workload) -> bool:
    """True when the conv reads no padded row or column past the input's end."""
    last_row = (wl["oh"] - 1) * wl["sh"] + (wl["kh"] - 1) * wl["dh"]
    last_col = (wl["ow"] - 1) * wl["sw"] + (wl["kw"] - 1) * wl["dw"]
    return last_row < wl["h"] and last_col < wl["w"]
