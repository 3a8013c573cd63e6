"""An NHWC graph (TFLite's ops as TVM's frontend emits them) converted to NCHW: TVM's numbers,
and transposes only at the function's edges and around ops without an NCHW form."""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax

from edgeprune.compiler.passes.nhwc_to_nchw import NHWCToNCHW
from tests.compiler.passes.test_subpixel_conv_transpose import ops, run

RNG = np.random.default_rng(0)


def const(*shape: int) -> relax.Expr:
    return relax.const(RNG.standard_normal(shape).astype("float32"))


def nhwc_graph(tail_reshape: bool) -> tvm.IRModule:
    """Conv + 1-d bias + hard-swish's clip, a depthwise conv, a channel pad into a residual add,
    PReLU, pool, resize, concat and a keep-dims mean, all NHWC; optionally a reshape at the end."""
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, 8, 10, 3), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            y = bb.emit(relax.op.nn.conv2d(x, const(3, 3, 3, 6), padding=1, data_layout="NHWC", kernel_layout="HWIO"))
            y = bb.emit(relax.op.add(y, const(6)))
            y = bb.emit(relax.op.multiply(y, relax.op.clip(relax.op.add(y, relax.const(3.0)), 0.0, 6.0)))
            d = bb.emit(relax.op.nn.conv2d(y, const(3, 3, 6, 1), padding=1, groups=6, data_layout="NHWC",
                                           kernel_layout="HWOI"))
            p = bb.emit(relax.op.nn.pad(y, [0, 0, 0, 0, 0, 0, 0, 2]))
            d = bb.emit(relax.op.add(relax.op.nn.conv2d(d, const(1, 1, 6, 8), data_layout="NHWC", kernel_layout="HWIO"), p))
            d = bb.emit(relax.op.nn.prelu(d, const(8), axis=3))
            q = bb.emit(relax.op.nn.max_pool2d(d, 2, 2, layout="NHWC"))
            r = bb.emit(relax.op.image.resize2d(q, (8, 10), layout="NHWC", method="linear"))
            c = bb.emit(relax.op.concat([d, r], axis=3))
            m = bb.emit(relax.op.multiply(c, relax.op.sigmoid(relax.op.mean(c, axis=[1, 2], keepdims=True))))
            out = bb.emit_output(relax.op.reshape(m, (1, 80, 16)) if tail_reshape else m)
        bb.emit_func_output(out)
    return bb.get()


def test_converted_graph_gives_tvms_numbers_with_transposes_only_at_the_edges():
    for tail_reshape in (False, True):
        plain = nhwc_graph(tail_reshape)
        converted = relax.transform.FoldConstant()(NHWCToNCHW(plain))
        called = ops(converted)
        assert called.count("relax.permute_dims") == 2, called
        assert called[0] == "relax.permute_dims"
        x = RNG.standard_normal((1, 8, 10, 3)).astype("float32")
        np.testing.assert_allclose(run(relax.transform.LegalizeOps()(converted), x),
                                   run(relax.transform.LegalizeOps()(plain), x), rtol=1e-5, atol=1e-5)


def test_inputs_and_outputs_keep_their_layout():
    converted = NHWCToNCHW(nhwc_graph(False))
    assert [int(d) for d in converted["main"].params[0].ty.shape.values] == [1, 8, 10, 3]
    assert [int(d) for d in converted["main"].ret_ty.shape.values] == [1, 8, 10, 16]
    convs = [b.value for block in converted["main"].body.blocks for b in block.bindings
             if isinstance(b.value, relax.Call) and b.value.op.name == "relax.nn.conv2d"]
    assert {(c.attrs.data_layout, c.attrs.kernel_layout) for c in convs} == {("NCHW", "OIHW")}
