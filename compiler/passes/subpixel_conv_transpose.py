"""Transposed convolutions as one ordinary conv over the input, then a depth-to-space shuffle.

A transposed conv of stride ``s`` (LinkNet's and U-Net's learned upsampling, FCN decoders)
writes each output pixel from the input pixels whose kernel taps land on it. TVM legalizes it
as a conv over the input dilated with ``s - 1`` zeros between pixels, which no schedule rule
takes: it fell back to the generic schedule, 7-8x slower than ONNX Runtime on a LinkNet.

Output pixel ``u = o + pad`` (``o`` the output index) is reached only by the taps of its phase
``r = u mod s``: ``y[q*s + r] = sum_t x[q - t] * w[r + s*t]`` with ``q = u div s``. So every
phase is an ordinary correlation of the undilated input with a sub-kernel of ``ceil(k / s)``
taps, flipped; the ``s*s`` phases (per spatial axis pair) of every output channel become the
output channels of one conv (sub-kernel taps past ``k`` are zero), its result is shuffled into
place (``Z[n, (c, ry, rx), qy, qx] -> y[n, c, qy*s + ry, qx*s + rx]``) and cropped by the
padding. The conv then gets the ``conv2d`` rule; the shuffle, crop and what follows (bias,
activation) are one injective kernel. The sub-kernels cost ``(s * ceil(k/s) / k)^2`` the
multiply-adds of the transposed conv (1.78x for k=3, s=2; 1x for k=2 or 4) in exchange.

Rewritten: NCHW/IOHW transposed convs with constant weights, ungrouped and undilated. Others
keep TVM's legalization.
"""

from __future__ import annotations

import math

import numpy as np
import tvm
from tvm import relax
from tvm.relax.dpl import is_const, is_op, rewrite_call, wildcard

from edgeprune.compiler.passes.structure import rewrite_relax_functions


def subpixel_weight(weight: np.ndarray, strides: tuple[int, int]) -> np.ndarray:
    """The ordinary conv's OIHW weight: output channel ``(c, ry, rx)`` holds phase ``(ry, rx)``'s
    flipped sub-kernel of output channel ``c``. ``weight`` is the transposed conv's IOHW one."""
    cin, cout, kh, kw = weight.shape
    sh, sw = strides
    th, tw = math.ceil(kh / sh), math.ceil(kw / sw)
    # zero taps up to whole sub-kernels: tap r + s*t of phase r, t < ceil(k / s)
    padded = np.zeros((cin, cout, th * sh, tw * sw), dtype=weight.dtype)
    padded[:, :, :kh, :kw] = weight
    # (cin, cout, t_y, r_y, t_x, r_x): tap index r + s*t
    taps = padded.reshape(cin, cout, th, sh, tw, sw)
    # flip the sub-kernels (the conv correlates), then order (cout, r_y, r_x, cin, t_y, t_x)
    taps = taps[:, :, ::-1, :, ::-1, :]
    return np.ascontiguousarray(taps.transpose(1, 3, 5, 0, 2, 4).reshape(cout * sh * sw, cin, th, tw))


def _rewritable(call: relax.Call) -> bool:
    attrs = call.attrs
    return (
        attrs.data_layout == "NCHW" and attrs.kernel_layout == "IOHW" and attrs.out_layout in ("", "NCHW")
        and int(attrs.groups) == 1 and all(int(d) == 1 for d in attrs.dilation)
        and all(isinstance(d, tvm.tirx.IntImm) for d in call.args[0].ty.shape.values)
    )


def _rewrite(func: relax.Function) -> relax.Function:
    data, weight = wildcard(), is_const()
    pattern = is_op("relax.nn.conv2d_transpose")(data, weight)

    def rewriter(expr: relax.Expr, matches: dict) -> relax.Expr:
        call = matches[pattern]
        if not _rewritable(call):
            return expr
        attrs = call.attrs
        w = matches[weight].value.numpy()
        _, cout, kh, kw = w.shape
        n, _, h, wd = (int(d) for d in call.args[0].ty.shape.values)
        sh, sw = (int(s) for s in attrs.strides)
        pt, pl, pb, pr = (int(p) for p in attrs.padding)
        oph, opw = (int(p) for p in attrs.output_padding)
        out_h, out_w = (h - 1) * sh - pt - pb + kh + oph, (wd - 1) * sw - pl - pr + kw + opw
        th, tw = math.ceil(kh / sh), math.ceil(kw / sw)
        # phase rows q = 0 .. ceil((pad + out) / s) - 1; the conv's output has in + bottom padding rows
        qh, qw = math.ceil((pt + out_h) / sh), math.ceil((pl + out_w) / sw)
        bottom, right = max(0, qh - h), max(0, qw - wd)
        rows, cols = h + bottom, wd + right
        out_dtype = attrs.out_dtype if attrs.out_dtype and str(attrs.out_dtype) != "void" else None
        phases = relax.op.nn.conv2d(
            matches[data], relax.const(subpixel_weight(w, (sh, sw))),
            padding=(th - 1, tw - 1, bottom, right), out_dtype=out_dtype,
        )
        shuffled = relax.op.reshape(
            relax.op.permute_dims(relax.op.reshape(phases, (n, cout, sh, sw, rows, cols)), [0, 1, 4, 2, 5, 3]),
            (n, cout, rows * sh, cols * sw),
        )
        return relax.op.strided_slice(shuffled, axes=[2, 3], begin=[pt, pl], end=[pt + out_h, pl + out_w])

    return rewrite_call(pattern, rewriter, func)


@tvm.transform.module_pass(opt_level=0, name="SubpixelConvTranspose")
def SubpixelConvTranspose(mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:  # noqa: N802
    """Rewrite every rewritable ``conv2d_transpose`` of the module's Relax functions."""
    return rewrite_relax_functions(mod, _rewrite)
