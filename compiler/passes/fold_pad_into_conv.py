"""Fold an explicit zero pad of a conv's input rows and columns into the conv's own padding.

TensorFlow pads explicitly before a VALID stride-2 conv where its SAME padding would be
asymmetric the other way (MediaPipe's BlazePose, most TF Hub models; ONNX files converted from
them too): ``conv2d(pad(x), w)``. As written, the pad is a kernel of its own that writes the
padded map out in full, and the conv then reads it; the conv rules inline their own padding
block into the conv's input reads instead. ``conv2d(x, w, padding=p + pad)`` is the same
numbers.

Folded: constant zero pads of the two spatial axes only, into NCHW convs (any groups). A pad
with other users stays for them.
"""

from __future__ import annotations

import tvm
from tvm import relax
from tvm.relax.dpl import is_const, is_op, rewrite_call, wildcard

from edgeprune.compiler.passes.structure import rewrite_relax_functions


def _spatial_zero_pad(pad: relax.Call) -> tuple[int, int, int, int] | None:
    """(top, left, bottom, right) of an NCHW zero pad of rows and columns only, else None."""
    attrs = pad.attrs
    widths = [int(w) for w in attrs.pad_width]
    if attrs.pad_mode != "constant" or float(attrs.pad_value) != 0.0 or len(widths) != 8 or any(widths[:4]):
        return None
    top, bottom, left, right = widths[4:]
    return top, left, bottom, right


def _rewrite(func: relax.Function) -> relax.Function:
    data = wildcard()
    pad = is_op("relax.nn.pad")(data)
    weight = is_const()
    pattern = is_op("relax.nn.conv2d")(pad, weight)

    def rewriter(expr: relax.Expr, matches: dict) -> relax.Expr:
        conv, widths = matches[pattern], _spatial_zero_pad(matches[pad])
        a = conv.attrs
        if widths is None or a.data_layout != "NCHW" or a.kernel_layout != "OIHW":
            return expr
        padding = [int(p) + w for p, w in zip(a.padding, widths)]
        return relax.op.nn.conv2d(matches[data], matches[weight], a.strides, padding, a.dilation, a.groups,
                                  a.data_layout, a.kernel_layout, a.out_layout, a.out_dtype)

    return rewrite_call(pattern, rewriter, func)


@tvm.transform.module_pass(opt_level=0, name="FoldPadIntoConv")
def FoldPadIntoConv(mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:  # noqa: N802
    """Fold every foldable ``conv2d(pad(x))`` of the module's Relax functions."""
    return rewrite_relax_functions(mod, _rewrite)
