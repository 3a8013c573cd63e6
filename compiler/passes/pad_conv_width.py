"""Convolutions legalized on output rows widened to whole vectors, then cropped.

The CPU conv schedules vectorise along the output row. A row that is not a whole number of
vectors ends in a ragged one: TVM guards its lanes with a predicate and LLVM splits it into
power-of-two pieces (7 lanes: 4 + 2 + 1), or the rule's default falls back to narrower
vectors, and the micro-kernel runs at a fraction of its speed on the 7-, 14- and 28-column maps
of classification backbones (``benchmarks/conv_row_padding.py``). Computing ``ow'`` columns
instead (``ow`` rounded up to a multiple of the vector granule, the extra columns reading zero
padding on the right) costs ``ow' / ow`` more arithmetic but no ragged vector; the extra
columns are cropped in the conv's own kernel, before its epilogue, so nothing else changes.

Only NCHW convs take this form: ungrouped and grouped ones (the ``conv2d`` rule's, which
vectorises a grouped conv's rows as it does an ungrouped one's) and depthwise ones
(``depthwise_conv2d``'s), and only while the padding stays under ``MAX_WASTE`` of the row
(``padded_columns``). 1x1 stride-1 unpadded convs are flattened GEMMs (``conv1x1``) whose
vectors run across rows: their ragged vector is the end of the whole map, which that rule pads.
"""

from __future__ import annotations

import tvm
from tvm import relax, te, tirx, topi

from edgeprune.compiler.passes.legalize import OP_PATTERN_OUT_EWISE_FUSABLE, tvm_legalization
from edgeprune.compiler.target import hardware_of

# 8 float lanes: AVX2's vector and half of AVX-512's. Depthwise convs stay at 8 (they are bound
# by memory, not by lanes); ungrouped and grouped ones take the full width where its padding stays small.
VECTOR_GRANULE = 8
CROP_BLOCK = "conv2d_crop"
# A ragged vector costs far more than its share of lanes, so padding pays until a large part of
# the row is padding; a third bounds the extra arithmetic.
MAX_WASTE = 1 / 3


def padded_columns(ow: int, granule: int) -> int:
    """Columns to add to an output row of ``ow``: up to the next multiple of ``granule``, unless
    that wastes more than ``MAX_WASTE`` of the row's arithmetic."""
    extra = -ow % granule
    return extra if extra <= MAX_WASTE * ow else 0


def row_extra(ow: int, lanes: int, depthwise: bool) -> int:
    """Columns an output row of ``ow`` is widened by on a CPU of ``lanes`` float lanes.

    An ungrouped or grouped conv is bound by its FMAs: a full-width vector does twice the work of a half
    one per instruction, so 56 columns computed as 64 (14% padding) beat 56 in 8-lane vectors;
    a row the full width would pad by more than ``MAX_WASTE`` (7 columns) takes the half width.
    """
    half = min(VECTOR_GRANULE, lanes)
    granules = [lanes, half] if not depthwise and lanes > half else [half]
    for granule in granules:
        extra = padded_columns(ow, granule)
        if extra or ow % granule == 0:
            return extra
    return 0


def padded_conv2d(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    """Legalize one ``relax.nn.conv2d`` call (a ``LegalizeOps`` customisation); TVM's own
legalization for every conv this form does not suit, and outside a CPU target's scope."""
    attrs = call.attrs
    data, weight = call.args
    shapes = [arg.ty.shape for arg in (data, weight)]
    static = all(isinstance(s, relax.ShapeExpr) and all(isinstance(d, tirx.IntImm) for d in s.values) for s in shapes)
    target = tvm.target.Target.current(allow_none=True)
    if (not static or target is None or target.kind.name != "llvm" or attrs.data_layout != "NCHW"
            or attrs.kernel_layout != "OIHW" or attrs.out_layout != "NCHW"):
        return tvm_legalization(bb, call)
    (_, ci, _, w), (co, _, kh, kw) = ([int(d) for d in s.values] for s in shapes)
    groups = int(attrs.groups)
    sh, sw = (int(s) for s in attrs.strides)
    dh, dw = (int(d) for d in attrs.dilation)
    pt, pl, pb, pr = (int(p) for p in attrs.padding)
    if (kh, kw, sh, sw, pt, pl, pb, pr) == (1, 1, 1, 1, 0, 0, 0, 0):
        return tvm_legalization(bb, call)
    ow = (w + pl + pr - dw * (kw - 1) - 1) // sw + 1
    extra = row_extra(ow, hardware_of(target).vector_lanes, depthwise=groups == ci == co)
    if extra == 0:
        return tvm_legalization(bb, call)
    # The least right padding that gives ``ow + extra`` columns; never less than the original.
    wide_pr = (ow + extra - 1) * sw + dw * (kw - 1) + 1 - w - pl
    out_dtype = attrs.out_dtype if attrs.out_dtype and str(attrs.out_dtype) != "void" else data.ty.dtype

    def conv_cropped(x: te.Tensor, k: te.Tensor) -> te.Tensor:
        # TVM's own legalization of the conv (``topi.nn.conv``), on a wider right padding
        wide = topi.nn.conv(x, k, (sh, sw), (pt, pl, pb, wide_pr), (dh, dw), groups, "NCHW", "OIHW", str(out_dtype))
        n, co, oh, _ = wide.shape
        return te.compute((n, co, oh, ow), lambda i, c, y, xx: wide[i, c, y, xx], name=CROP_BLOCK)

    out = bb.call_te(conv_cropped, data, weight, primfunc_name_hint="conv2d")
    func = out.args[0]
    bb.update_func(func, bb.get()[func].with_attr("op_pattern", OP_PATTERN_OUT_EWISE_FUSABLE))
    return out
