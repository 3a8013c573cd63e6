"""Bilinear ``resize2d`` legalized as two 1-D passes (columns, then rows).

TOPI's bilinear resize computes every output from four gathered inputs: the gathers follow
the input column each output column maps to, so on a CPU they cannot be plain vector loads.
Interpolation is separable: blending along the width first, for each *input* row, gives
``resize_rows[n, c, iy, ox]``; blending two of those rows gives the output. The gathered loads
then number ``2 x h x ow`` instead of ``4 x oh x ow``, and the second pass is unit-stride
vector loads and FMAs. Both passes compute exactly TOPI's expressions (TOPI also blends each
row along the width first), so the numbers are TOPI's.

The passes are two PrimFuncs. The second is marked ``kBroadcast`` for ``FuseOps`` (each output
element reads its input at an index computed from its own coordinates, as a broadcast does), so
where the resized map feeds a conv's epilogue (TopFormer's injection modules multiply and add
three or four resized maps to a 1x1 conv's result) the row blend runs inside that epilogue on
two rows of the small width-blended map, and the full-size map never goes through memory.
Elsewhere (a model output, a concat) the first pass, injective, joins the second's group, and
one kernel holds both blocks; a conv group is heavier than injective, so the first pass never
joins one.

Only static NCHW bilinear resizes that do not shrink the height more than 2x take this form
(beyond that the first pass would blend rows the output never reads); everything else keeps
TVM's legalization.
"""

from __future__ import annotations

from tvm import relax, te, tirx, topi
from tvm.topi.image.resize import get_inx

from edgeprune.compiler.passes.legalize import OP_PATTERN_BROADCAST, tvm_legalization

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
        return tvm_legalization(bb, call)
    out_dtype = attrs.out_dtype if attrs.out_dtype and str(attrs.out_dtype) != "void" else data.ty.dtype
    mode = str(attrs.coordinate_transformation_mode)
    rows = bb.emit(bb.call_te(blend_width, data, int(size.values[1]), mode, primfunc_name_hint=ROWS_BLOCK))
    out = bb.call_te(blend_height, rows, int(size.values[0]), mode, str(out_dtype), primfunc_name_hint="resize2d")
    height_pass = out.args[0]
    bb.update_func(height_pass, bb.get()[height_pass].with_attr("op_pattern", OP_PATTERN_BROADCAST))
    return out


def _source(o, in_size, out_size: int, mode: str):  # noqa: ANN001, ANN202 - TE expressions
    """The lower input index an output index blends from, and the weight of the upper one."""
    coord = get_inx(o, tirx.const(int(in_size), "int32"), tirx.const(out_size, "int32"), mode)
    low = te.floor(coord).astype("int32")
    return low, coord - low


def _clamp(i, size):  # noqa: ANN001, ANN202
    return te.max(te.min(i, int(size) - 1), 0)


def _blend(a, b, t):  # noqa: ANN001, ANN202 - TOPI's _lerp, same operation order
    return a * (1.0 - t) + b * t


def blend_width(data: te.Tensor, out_w: int, mode: str) -> te.Tensor:
    """First pass: every input row of ``data`` (NCHW) resized to ``out_w`` columns."""
    n, c, h, w = data.shape

    def along_width(b, ch, iy, ox):  # noqa: ANN001, ANN202
        x0, fx = _source(ox, w, out_w, mode)
        return _blend(data[b, ch, iy, _clamp(x0, w)], data[b, ch, iy, _clamp(x0 + 1, w)], fx)

    return te.compute((n, c, h, out_w), along_width, name=ROWS_BLOCK)


def blend_height(rows: te.Tensor, out_h: int, mode: str, out_dtype: str) -> te.Tensor:
    """Second pass: output rows blended from two rows of ``blend_width``'s result."""
    n, c, h, out_w = rows.shape

    def along_height(b, ch, oy, ox):  # noqa: ANN001, ANN202
        y0, fy = _source(oy, h, out_h, mode)
        return _blend(rows[b, ch, _clamp(y0, h), ox], rows[b, ch, _clamp(y0 + 1, h), ox], fy).astype(out_dtype)

    return te.compute((n, c, out_h, out_w), along_height, name=OUT_BLOCK, tag=topi.tag.INJECTIVE)
