"""Sigmoid legalized with a vectorisable exponential: TOPI's numbers within float32 rounding
over the whole float range, a vectorised loop where TOPI's calls ``expf`` per element, and TVM's
legalization for other dtypes."""

from __future__ import annotations

import numpy as np
import tvm
import tvm_ffi
from tvm import relax, s_tir, te

from edgeprune.compiler.passes.vector_sigmoid import sigmoid, vector_sigmoid
from tests.compiler.schedules.cases import TARGET

FLOAT32_ULP = 2.0**-24
SMALLEST_NORMAL = 2.0**-126


def sigmoid_module(shape, dtype="float32") -> tvm.IRModule:
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType(shape, dtype))
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(relax.op.sigmoid(x))
        bb.emit_func_output(out)
    return bb.get()


def legalized(mod: tvm.IRModule, ours: bool) -> tvm.IRModule:
    return relax.transform.LegalizeOps(customize_legalize_map={"relax.sigmoid": vector_sigmoid} if ours else None)(mod)


def run(mod: tvm.IRModule, x: np.ndarray) -> np.ndarray:
    vm = relax.VirtualMachine(tvm.compile(mod, TARGET), tvm.cpu())
    return vm["main"](tvm.runtime.tensor(x)).numpy()


def test_sigmoid_within_a_few_ulps_everywhere():
    x = np.concatenate([np.linspace(-110.0, 110.0, 1 << 18), [0.0, -0.0, 1e-30, -1e-30, 88.8, -88.8, 1e4, -1e4]])
    x = x.astype("float32")
    got = run(legalized(sigmoid_module(x.shape), True), x)
    np.testing.assert_allclose(got, run(legalized(sigmoid_module(x.shape), False), x), rtol=8 * FLOAT32_ULP, atol=1.2e-38)
    exact = 1.0 / (1.0 + np.exp(-x.astype(np.float64)))
    normal = exact >= SMALLEST_NORMAL
    assert np.max(np.abs(got[normal] - exact[normal]) / exact[normal]) < 4 * FLOAT32_ULP
    assert np.all(got[~normal] <= 1.2 * SMALLEST_NORMAL) and np.all(got >= 0)  # flushed near zero, never garbage
    assert got[-4] == 1.0


def sigmoid_assembly(fn) -> str:
    """This CPU's assembly of a 16-lane vector loop of ``fn`` over 1024 floats."""
    data = te.placeholder((1024,), "float32", name="x")
    sch = s_tir.Schedule(te.create_prim_func([data, te.compute((1024,), lambda i: fn(data[i]), name="s")]))
    _, lanes = sch.split(sch.get_loops(sch.get_sblock("s"))[0], [None, 16])
    sch.vectorize(lanes)
    return tvm.compile(sch.mod, TARGET).mod.inspect_source("asm")


def test_nan_stays_nan_and_infinities_saturate():
    x = np.array([np.nan, np.inf, -np.inf, 0.0] * 4, dtype="float32")
    got = run(legalized(sigmoid_module(x.shape), ours=True), x).reshape(4, 4)
    assert np.isnan(got[:, 0]).all() and (got[:, 1] == 1.0).all() and (got[:, 3] == 0.5).all()
    assert (0.0 <= got[:, 2]).all() and (got[:, 2] <= 2 * SMALLEST_NORMAL).all()  # the exponential's clamp


def test_sigmoid_vectorises_where_topis_calls_expf_per_lane():
    assert "expf" in sigmoid_assembly(te.sigmoid)
    assert "expf" not in sigmoid_assembly(sigmoid)


def test_float16_keeps_tvms_legalization():
    mod = sigmoid_module((4, 9), "float16")
    assert tvm_ffi.structural_equal(legalized(mod, True), legalized(mod, False))


def test_the_exponential_is_computed_once_per_element_where_a_consumer_inlines_it():
    """Regression: as one expression tree, SiLU's ``x * sigmoid(x)`` inlined into a conv's epilogue
    repeated the exponential's terms (its rounding ``floor`` a dozen times), and the depth-wise
    kernels of EfficientNet ran twice as long; its terms are let-bound once."""
    data = te.placeholder((64,), "float32", name="x")
    silu = te.compute((64,), lambda i: data[i] * sigmoid(data[i]), name="silu")
    assert te.create_prim_func([data, silu]).script().count("T.floor(") == 1
