"""Transposed convs rewritten as a sub-pixel conv and a shuffle: TVM's own numbers for every
stride, kernel, padding and output padding a decoder uses, and the conv rule schedules the conv."""

from __future__ import annotations

import numpy as np
import pytest
import tvm
from tvm import relax

from edgeprune.compiler.passes.structure import block_names
from edgeprune.compiler.passes.subpixel_conv_transpose import SubpixelConvTranspose
from edgeprune.compiler.schedules.registry import match
from tests.compiler.schedules.cases import RULES, TARGET


def transposed(shape, cout, kernel, strides, padding, output_padding=(0, 0), groups=1, seed=0):
    """``conv2d_transpose(x, w)`` on input ``x`` of ``shape`` (IOHW weights, a constant)."""
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((shape[1], cout // groups, *kernel)).astype("float32")
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType(shape, "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            y = bb.emit_output(relax.op.nn.conv2d_transpose(
                x, relax.const(weight), strides=strides, padding=padding, output_padding=output_padding, groups=groups))
        bb.emit_func_output(y)
    return bb.get()


def ops(mod: tvm.IRModule) -> list[str]:
    """The ops the module's ``main`` calls, in order."""
    return [b.value.op.name for block in mod["main"].body.blocks for b in block.bindings
            if isinstance(b.value, relax.Call) and isinstance(b.value.op, tvm.ir.Op)]


def run(mod: tvm.IRModule, x: np.ndarray) -> np.ndarray:
    executable = tvm.compile(mod, TARGET)
    vm = relax.VirtualMachine(executable, tvm.cpu())
    return vm["main"](tvm.runtime.tensor(x)).numpy()


CASES = {  # input shape, output channels, kernel, strides, padding (t, l, b, r), output padding
    "LinkNet 3x3 s2 p1 op1": ((1, 8, 7, 9), 6, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),
    "4x4 s2 p1": ((1, 5, 6, 6), 7, (4, 4), (2, 2), (1, 1, 1, 1), (0, 0)),
    "2x2 s2 (U-Net)": ((1, 6, 5, 8), 4, (2, 2), (2, 2), (0, 0, 0, 0), (0, 0)),
    "3x3 s1 p1": ((1, 4, 6, 5), 3, (3, 3), (1, 1), (1, 1, 1, 1), (0, 0)),
    "5x5 s3 p2, asymmetric": ((1, 3, 4, 5), 5, (5, 5), (3, 3), (2, 1, 0, 2), (0, 1)),
    "strides 2x1": ((1, 4, 5, 6), 4, (3, 3), (2, 1), (1, 1, 1, 1), (1, 0)),
}


@pytest.mark.parametrize("case", CASES)
def test_rewrite_gives_tvms_numbers(case):
    shape, cout, kernel, strides, padding, output_padding = CASES[case]
    plain = transposed(shape, cout, kernel, strides, padding, output_padding)
    rewritten = SubpixelConvTranspose(plain)
    assert ops(rewritten)[0] == "relax.nn.conv2d" and "relax.nn.conv2d_transpose" not in ops(rewritten)
    x = np.random.default_rng(1).standard_normal(shape).astype("float32")
    expected = run(relax.transform.LegalizeOps()(plain), x)
    got = run(relax.transform.LegalizeOps()(rewritten), x)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_grouped_transposed_conv_keeps_tvms_legalization():
    plain = transposed((1, 8, 5, 5), 8, (3, 3), (2, 2), (1, 1, 1, 1), groups=2)
    assert ops(SubpixelConvTranspose(plain)) == ["relax.nn.conv2d_transpose"]


def test_the_sub_pixel_conv_gets_the_conv2d_rule():
    from edgeprune.compiler.passes import FuseEpilogue

    with TARGET:
        fused = FuseEpilogue()(SubpixelConvTranspose(transposed((1, 16, 8, 8), 8, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1))))
    convs = [f for f in fused.functions.values() if isinstance(f, tvm.tirx.PrimFunc) and
             any("conv2d" in name for name in block_names(f))]
    assert len(convs) == 1 and match(RULES, convs[0])[0].name == "conv2d"
