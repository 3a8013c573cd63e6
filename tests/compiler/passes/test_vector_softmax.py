"""Softmax legalized with a vectorisable exponential: as accurate as the C library's ``expf``,
TOPI's numbers within float32 rounding, and TVM's legalization wherever it does not apply."""

from __future__ import annotations

import numpy as np
import pytest
import tvm
import tvm_ffi
from tvm import relax, te

from edgeprune.compiler.passes.structure import block_names, prim_funcs
from edgeprune.compiler.passes.vector_softmax import exp_nonpositive, vector_softmax

FLOAT32_ULP = 2.0**-24  # relative spacing of float32 values near 1


def exp_of(x: np.ndarray) -> np.ndarray:
    """``exp_nonpositive`` compiled for this machine's CPU, applied to ``x`` (float32, 1-D)."""
    data = te.placeholder(x.shape, "float32", name="x")
    out = te.compute(x.shape, lambda i: exp_nonpositive(data[i]), name="exp")
    lib = tvm.compile(tvm.IRModule({"main": te.create_prim_func([data, out])}), "llvm")
    result = tvm.runtime.tensor(np.full_like(x, np.nan))
    lib["main"](tvm.runtime.tensor(x), result)
    return result.numpy()


def test_exp_within_two_ulps_on_the_softmax_range():
    x = np.concatenate([np.linspace(-87.3, 0.0, 1 << 18), [0.0, -1e-30, -1e-7, -0.5, -0.34657359]]).astype("float32")
    got = exp_of(x)
    exact = np.exp(x.astype(np.float64))
    assert np.max(np.abs(got - exact) / exact) < 2 * FLOAT32_ULP
    assert got[-5] == 1.0


def test_exp_below_the_normal_range_is_tiny_not_garbage():
    got = exp_of(np.array([-100.0, -1e4, -np.inf], dtype="float32"))
    assert np.all((got > 0) & (got < 1.2e-38)), got  # the smallest normal float32: 2^-126


def softmax_module(shape, axis, dtype="float32") -> tvm.IRModule:
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType(shape, dtype))
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(relax.op.nn.softmax(x, axis=axis))
        bb.emit_func_output(out)
    return bb.get()


def legalized(mod: tvm.IRModule, ours: bool) -> tvm.IRModule:
    return relax.transform.LegalizeOps(customize_legalize_map={"relax.nn.softmax": vector_softmax} if ours else None)(mod)


def run(mod: tvm.IRModule, x: np.ndarray) -> np.ndarray:
    vm = relax.VirtualMachine(tvm.compile(mod, "llvm"), tvm.cpu())
    return vm["main"](tvm.runtime.tensor(x)).numpy()


@pytest.mark.parametrize("shape", [(3, 5, 37), (1, 8, 64, 64), (7,)])
def test_last_axis_softmax_keeps_topis_blocks_and_numbers(shape):
    mod = softmax_module(shape, -1)
    ours, topi = legalized(mod, True), legalized(mod, False)
    (func,) = prim_funcs(ours).values()
    assert block_names(func) == ["T_softmax_maxelem", "T_softmax_exp", "T_softmax_expsum", "T_softmax_norm"]
    x = (np.random.default_rng(0).standard_normal(shape) * 20).astype("float32")  # wide logits, some near -87
    got = run(ours, x)
    np.testing.assert_allclose(got, run(topi, x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(got.sum(axis=-1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("shape, axis, dtype", [((2, 7, 5), 1, "float32"), ((4, 9), -1, "float16")])
def test_other_softmaxes_keep_tvms_legalization(shape, axis, dtype):
    mod = softmax_module(shape, axis, dtype)
    assert tvm_ffi.structural_equal(legalized(mod, True), legalized(mod, False))
