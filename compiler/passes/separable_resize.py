"""Bilinear ``resize2d`` legalized as two 1-D passes (columns, then rows).

TOPI's bilinear resize computes every output from four gathered inputs: the gathers follow
the input column each output column maps to, so on a CPU they cannot be plain vector loads.
Interpolation is separable: blending along the width first, for each *input* row, gives
``resize_rows[n, c, iy, ox]``; blending two of those rows gives the output. The gathered loads
then number ``2 x h x ow`` instead of ``4 x oh x ow``, and the second pass is unit-stride
vector loads and FMAs. Both passes compute exactly TOPI's expressions (TOPI also blends each
row along the width first), so the numbers are TOPI's.

Only static NCHW bilinear resizes that do not shrink the height more than 2x take this form
(beyond that the first pass would blend rows the output never reads); everything else keeps
TVM's legalization.
"""

from __future__ import annotations

import tvm
from tvm import relax, te, tirx, topi
from tvm.topi.image.resize import get_inx

ROWS_BLOCK = "resize_rows"
OUT_BLOCK = "resize"
# Modes whose source coordinate depends only on the output coordinate and the two sizes.
MODES = ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric")


def separable_resize(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    """Legalize one ``relax.image.resize2d`` call (a ``LegalizeOps`` customisation)."""
    attrs = call.attrs
    data = call.args[0]
    shape = data.ty.shape
    size = call.args[1]
    static = (
        isinstance(shape, relax.ShapeExpr) and isinstance(size, relax.ShapeExpr)
        and all(isinstance(d, tirx.IntImm) for d in [*shape.values, *size.values])
    )
    if (not static or attrs.layout != "NCHW" or attrs.method != "linear"
            or attrs.coordinate_transformation_mode not in MODES
            or int(shape.values[2]) > 2 * int(size.values[0])):
        return _default_resize(bb, call)
    out_dtype = attrs.out_dtype if attrs.out_dtype and str(attrs.out_dtype) != "void" else data.ty.dtype
    return bb.call_te(
        bilinear_separable, data, int(size.values[0]), int(size.values[1]),
        str(attrs.coordinate_transformation_mode), str(out_dtype), primfunc_name_hint="resize2d",
    )


def bilinear_separable(data: te.Tensor, out_h: int, out_w: int, mode: str, out_dtype: str) -> te.Tensor:
    """Bilinear NCHW resize of ``data`` to ``out_h x out_w``: ``resize_rows`` then ``resize``."""
    n, c, h, w = data.shape

    def source(o, in_size, out_size):  # noqa: ANN001, ANN202 - TE expressions
        coord = get_inx(o, tirx.const(int(in_size), "int32"), tirx.const(out_size, "int32"), mode)
        low = te.floor(coord).astype("int32")
        return low, coord - low

    def clamp(i, size):  # noqa: ANN001, ANN202
        return te.max(te.min(i, int(size) - 1), 0)

    def blend(a, b, t):  # noqa: ANN001, ANN202 - TOPI's _lerp, same operation order
        return a * (1.0 - t) + b * t

    def along_width(b, ch, iy, ox):  # noqa: ANN001, ANN202
        x0, fx = source(ox, w, out_w)
        return blend(data[b, ch, iy, clamp(x0, w)], data[b, ch, iy, clamp(x0 + 1, w)], fx)

    rows = te.compute((n, c, h, out_w), along_width, name=ROWS_BLOCK)

    def along_height(b, ch, oy, ox):  # noqa: ANN001, ANN202
        y0, fy = source(oy, h, out_h)
        return blend(rows[b, ch, clamp(y0, h), ox], rows[b, ch, clamp(y0 + 1, h), ox], fy).astype(out_dtype)

    return te.compute((n, c, out_h, out_w), along_height, name=OUT_BLOCK, tag=topi.tag.INJECTIVE)


def _default_resize(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    return tvm.ir.Op.get("relax.image.resize2d").get_attr("FLegalize")(bb, call)
