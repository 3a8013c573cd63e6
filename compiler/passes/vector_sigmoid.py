"""Sigmoid legalized with an exponential the CPU can vectorise.

TOPI's sigmoid is ``1 / (1 + exp(-x))`` with ``exp`` as LLVM's intrinsic, which becomes one
``expf`` library call per element even in a vector loop. SiLU (``x * sigmoid(x)``, EfficientNet's
and most detectors' activation) sits in the epilogue of nearly every conv of such a net, so the
scalar calls dominated those kernels. Here the exponential is ``vector_softmax.exp_nonpositive``
of ``-|x|`` (in (0, 1], never overflowing): ``sigmoid(x) = 1 / (1 + e^-|x|)`` for ``x >= 0`` and
``e^-|x| / (1 + e^-|x|)`` below, a select that vectorises; a NaN stays NaN, as in TOPI's (the
exponential's clamp would map it to a number). Only float32 takes this form.
"""

from __future__ import annotations

from tvm import relax, te, tirx

from edgeprune.compiler.passes.legalize import tvm_legalization
from edgeprune.compiler.passes.vector_softmax import exp_nonpositive


def sigmoid(x: tirx.PrimExpr) -> tirx.PrimExpr:
    """``1 / (1 + e^-x)`` for float32 ``x`` as vectorisable arithmetic."""
    zero, one = tirx.const(0.0, "float32"), tirx.const(1.0, "float32")
    v, t = tirx.Var("x", "float32"), tirx.Var("t", "float32")
    body = tirx.Select(tirx.isnan(v), v, tirx.Select(v >= zero, one, t) / (one + t))
    return tirx.Let(v, x, tirx.Let(t, exp_nonpositive(-te.abs(v)), body))


def vector_sigmoid(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    """Legalize one ``relax.sigmoid`` call (a ``LegalizeOps`` customisation)."""
    data = call.args[0]
    if data.ty.dtype != "float32":
        return tvm_legalization(bb, call)
    return bb.call_te(lambda x: te.compute(x.shape, lambda *i: sigmoid(x[i]), name="T_sigmoid"), data,
                      primfunc_name_hint="sigmoid")
