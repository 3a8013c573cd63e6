"""Fold inference BatchNorm into the convolution before it: ``bn(conv(x, w) [+ b])``.

TVM's ``FoldBatchnormToConv2D`` handles only a bias-free conv directly followed by BN and
ignores ``axis``/``training``/``center``/``scale``. This pass also folds a conv whose bias add
sits between conv and BN (what ``nn.Conv2d(bias=True)`` exports to), checks that the BN
normalises the conv's output channels with running statistics, and computes the new weights
in float64 from the constants so no extra ops reach the graph. BNs it cannot fold are left
for ``DecomposeOpsForInference`` (scale and shift ops that FuseOps puts into an epilogue).
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax
from tvm.relax.dpl import is_const, is_op, is_tuple_get_item, rewrite_call, wildcard

from edgeprune.compiler.passes.structure import rewrite_relax_functions


def _const(expr: relax.Expr) -> np.ndarray:
    return expr.value.numpy()


def _foldable(conv: relax.Call, bn: relax.Call, bias: np.ndarray | None) -> bool:
    conv_attrs, bn_attrs = conv.attrs, bn.attrs
    if conv_attrs.data_layout != "NCHW" or conv_attrs.kernel_layout != "OIHW":
        return False
    if conv_attrs.out_layout not in ("", "NCHW"):
        return False
    if int(bn_attrs.axis) != 1 or bool(bn_attrs.training):
        return False
    out_channels = int(conv.args[1].value.shape[0])
    return bias is None or bias.size == out_channels and bias.shape[-2:] in ((1, 1), (out_channels, 1))


def _rewrite(func: relax.Function) -> relax.Function:
    data, weight = wildcard(), is_const()
    conv = is_op("relax.nn.conv2d")(data, weight)
    bias = is_const()
    biased = is_op("relax.add")(conv, bias)
    gamma, beta, mean, var = is_const(), is_const(), is_const(), is_const()
    bn = is_op("relax.nn.batch_norm")(conv | biased, gamma, beta, mean, var)
    pattern = is_tuple_get_item(bn, 0)

    def rewriter(expr: relax.Expr, matches: dict) -> relax.Expr:
        conv_call, bn_call = matches[conv], matches[bn]
        b = _const(matches[bias]) if bias in matches else None
        if not _foldable(conv_call, bn_call, b):
            return expr
        attrs = bn_call.attrs
        w = _const(matches[weight]).astype(np.float64)
        channels = w.shape[0]
        g = _const(matches[gamma]).astype(np.float64) if attrs.scale else np.ones(channels)
        beta_v = _const(matches[beta]).astype(np.float64) if attrs.center else np.zeros(channels)
        scale = g / np.sqrt(_const(matches[var]).astype(np.float64) + float(attrs.epsilon))
        shift = beta_v - _const(matches[mean]).astype(np.float64) * scale
        if b is not None:
            shift = shift + b.reshape(-1).astype(np.float64) * scale
        dtype = str(matches[weight].value.dtype)
        new_w = relax.const((w * scale.reshape(-1, 1, 1, 1)).astype(dtype))
        new_b = relax.const(shift.reshape(1, channels, 1, 1).astype(dtype))
        folded = relax.Call(conv_call.op, [matches[data], new_w], conv_call.attrs)
        return relax.op.add(folded, new_b)

    return rewrite_call(pattern, rewriter, func)


@tvm.transform.module_pass(opt_level=0, name="FoldBatchNorm")
def FoldBatchNorm(mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:  # noqa: N802 - pass naming
    """Fold every foldable ``conv2d [+ bias] -> batch_norm`` pair of the module's Relax functions."""
    return relax.transform.DeadCodeElimination()(rewrite_relax_functions(mod, _rewrite))
