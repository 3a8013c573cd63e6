"""Explicit zero pads folded into the conv reading them: TVM's numbers, and the pads that must
stay (a channel pad, a non-zero or reflecting pad) stay."""

from __future__ import annotations

import numpy as np
import pytest
from tvm import relax

from edgeprune.compiler.passes.fold_pad_into_conv import FoldPadIntoConv
from tests.compiler.passes.test_subpixel_conv_transpose import ops, run


def padded_conv(pad_width, groups=1, strides=1, padding=0, pad_mode="constant", pad_value=0.0):
    rng = np.random.default_rng(0)
    shape = (1, 4, 9, 10)
    cout = 4 if groups == 4 else 6
    channels = shape[1] + pad_width[2] + pad_width[3]
    weight = rng.standard_normal((cout, channels // groups, 3, 3)).astype("float32")
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType(shape, "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            p = bb.emit(relax.op.nn.pad(x, pad_width, pad_mode, pad_value))
            out = bb.emit_output(relax.op.nn.conv2d(p, relax.const(weight), strides, padding, groups=groups))
        bb.emit_func_output(out)
    return bb.get(), rng.standard_normal(shape).astype("float32")


FOLDED = {
    "TF's stride-2 VALID pad": dict(pad_width=[0, 0, 0, 0, 0, 1, 0, 1], strides=2),
    "depthwise, symmetric": dict(pad_width=[0, 0, 0, 0, 1, 1, 1, 1], groups=4),
    "added to the conv's own padding": dict(pad_width=[0, 0, 0, 0, 2, 0, 1, 3], padding=1),
}
KEPT = {
    "channel pad": dict(pad_width=[0, 0, 0, 2, 0, 0, 0, 0]),
    "pad value 1": dict(pad_width=[0, 0, 0, 0, 1, 1, 1, 1], pad_value=1.0),
    "reflecting": dict(pad_width=[0, 0, 0, 0, 1, 1, 1, 1], pad_mode="reflect"),
}


@pytest.mark.parametrize("case", FOLDED)
def test_folded_pads_give_tvms_numbers(case):
    mod, x = padded_conv(**FOLDED[case])
    folded = FoldPadIntoConv(mod)
    assert ops(folded) == ["relax.nn.conv2d"]
    np.testing.assert_allclose(run(relax.transform.LegalizeOps()(folded), x), run(relax.transform.LegalizeOps()(mod), x),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", KEPT)
def test_other_pads_stay(case):
    mod, _ = padded_conv(**KEPT[case])
    assert ops(FoldPadIntoConv(mod)) == ["relax.nn.pad", "relax.nn.conv2d"]
