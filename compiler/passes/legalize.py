"""What the ``LegalizeOps`` customisations share (``separable_resize``, ``vector_softmax``,
``pad_conv_width``): TVM's own legalization for the calls they leave alone, and the operator
pattern kinds ``FuseOps`` reads from a PrimFunc's ``op_pattern`` attribute."""

from __future__ import annotations

from tvm import relax

# TVM's OpPatternKind values.
OP_PATTERN_BROADCAST = 1
OP_PATTERN_OUT_EWISE_FUSABLE = 4


def tvm_legalization(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    """``call`` legalized as TVM's registered ``FLegalize`` of its operator does it."""
    return call.op.get_attr("FLegalize")(bb, call)
