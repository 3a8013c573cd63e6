"""Softmax over the last axis legalized with an exponential the CPU can vectorise.

TOPI's softmax calls ``exp``, which LLVM turns into one ``expf`` library call per element, even
in a vector loop: the loop runs scalar, and the exponentials are most of a softmax's work
(TopFormer-Base's attention softmax: 8 x 64 rows of 64). Here the exponential is Cephes'
single-precision algorithm written out in TIR arithmetic (``exp_nonpositive``), which
vectorises: within 1.4 ulp of the exact value on [-87, 0], closer than the C library's
``expf`` measured the same way (3.4 ulp). The blocks keep TOPI's names and order, so
``schedules.cpu.softmax`` schedules either form.

Only float32 softmax over the last axis takes this form; everything else keeps TVM's
legalization.
"""

from __future__ import annotations

from tvm import relax, te, tirx

from edgeprune.compiler.passes.legalize import tvm_legalization

LOG2_E = 1.44269504088896341
# ln 2 split in two so that ``n * LN2_HIGH`` is exact for the n that occur (|n| < 2^7).
LN2_HIGH, LN2_LOW = 0.693359375, -2.12194440e-4
# Cephes' minimax polynomial for (e^r - 1 - r) / r^2 on [-ln2 / 2, ln2 / 2], highest degree first.
POLYNOMIAL = (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1)
LOWEST = -87.33654  # e^LOWEST is the smallest normal float32; below it the result is flushed to that


def exp_nonpositive(x: tirx.PrimExpr) -> tirx.PrimExpr:
    """``e^x`` for float32 ``x <= 0`` (softmax's shifted logits), as vectorisable arithmetic:
    ``e^x = 2^n e^r`` with ``n = round(x / ln 2)``, ``e^r`` by a polynomial, ``2^n`` built in the
    float's exponent bits. The terms used more than once are let-bound: a consumer that inlines
    this (a conv's SiLU epilogue) evaluates each once, not once per use in an expression tree."""

    def const(value: float) -> tirx.PrimExpr:
        return tirx.const(value, "float32")

    clamped, n, r = (tirx.Var(name, "float32") for name in ("clamped", "n", "r"))
    poly = const(POLYNOMIAL[0])
    for coefficient in POLYNOMIAL[1:]:
        poly = poly * r + const(coefficient)
    two_to_n = tirx.reinterpret("float32", (n.astype("int32") + 127) << 23)
    value = (poly * r * r + r + const(1.0)) * two_to_n
    value = tirx.Let(r, clamped - n * const(LN2_HIGH) - n * const(LN2_LOW), value)
    value = tirx.Let(n, te.floor(clamped * const(LOG2_E) + const(0.5)), value)
    return tirx.Let(clamped, te.max(x, const(LOWEST)), value)


def vector_softmax(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    """Legalize one ``relax.nn.softmax`` call (a ``LegalizeOps`` customisation)."""
    data = call.args[0]
    ndim = data.ty.ndim
    if data.ty.dtype != "float32" or ndim < 1 or int(call.attrs.axis) not in (-1, ndim - 1):
        return tvm_legalization(bb, call)
    return bb.call_te(softmax_last_axis, data, primfunc_name_hint="softmax")


def softmax_last_axis(x: te.Tensor) -> te.Tensor:
    """TOPI's four softmax blocks over the last axis of ``x``, with ``exp_nonpositive``."""
    *outer, cols = x.shape
    axis = len(x.shape) - 1
    k_max = te.reduce_axis((0, cols), name="k")
    maxelem = te.compute(outer, lambda *i: te.max(x[(*i, k_max)], axis=k_max), name="T_softmax_maxelem")
    exp = te.compute(x.shape, lambda *i: exp_nonpositive(x[i] - maxelem[i[:-1]]), name="T_softmax_exp")
    k_sum = te.reduce_axis((0, cols), name="k")
    expsum = te.compute(outer, lambda *i: te.sum(exp[(*i, k_sum)], axis=k_sum), name="T_softmax_expsum")
    return te.compute(x.shape, lambda *i: exp[i] / expsum[i[:-1]], name="T_softmax_norm", attrs={"axis": axis})
