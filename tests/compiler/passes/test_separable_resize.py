"""Bilinear resize legalized in two passes: TOPI's numbers bit for bit, PyTorch's within
rounding, and TVM's one-block form wherever the separable one does not apply; fused, the height
pass goes into a conv's epilogue, and elsewhere the two passes stay one kernel."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import tvm
import tvm_ffi
from tvm import relax

from edgeprune.compiler.passes.legalize import OP_PATTERN_BROADCAST
from edgeprune.compiler.passes.separable_resize import OUT_BLOCK, ROWS_BLOCK, separable_resize
from edgeprune.compiler.passes.structure import block_names, kernel_calls, prim_funcs
from tests.compiler.schedules.cases import fused_module, injection, resized


def resize_module(shape, size, **attrs) -> tvm.IRModule:
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType(shape, "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(relax.op.image.resize2d(x, size, **attrs))
        bb.emit_func_output(out)
    return bb.get()


def legalized(mod: tvm.IRModule, ours: bool) -> tvm.IRModule:
    custom = {"relax.image.resize2d": separable_resize} if ours else None
    return relax.transform.LegalizeOps(customize_legalize_map=custom)(mod)


def kernel_blocks(mod: tvm.IRModule) -> dict[str, list[str]]:
    return {name: block_names(func) for name, func in prim_funcs(mod).items()}


def run(mod: tvm.IRModule, x: np.ndarray) -> np.ndarray:
    vm = relax.VirtualMachine(tvm.compile(mod, "llvm"), tvm.cpu())
    return vm["main"](tvm.runtime.tensor(x)).numpy()


BILINEAR = {  # shape, size, mode; torch's align_corners for the modes torch has
    "upsample 8x": ((1, 4, 8, 8), (64, 64), "half_pixel"),
    "odd sizes": ((2, 3, 5, 7), (13, 11), "align_corners"),
    "width shrinks": ((1, 2, 6, 20), (12, 9), "pytorch_half_pixel"),
    "height halves": ((1, 2, 10, 6), (5, 12), "asymmetric"),
}
TORCH_ALIGN = {"half_pixel": False, "pytorch_half_pixel": False, "align_corners": True}


@pytest.mark.parametrize("case", BILINEAR)
def test_bilinear_is_two_passes_with_topis_numbers(case):
    shape, size, mode = BILINEAR[case]
    mod = resize_module(shape, size, method="linear", coordinate_transformation_mode=mode)
    ours, topi = legalized(mod, True), legalized(mod, False)
    funcs = prim_funcs(ours)
    assert sorted(kernel_blocks(ours).values()) == [[OUT_BLOCK], [ROWS_BLOCK]]
    height_pass = next(f for f in funcs.values() if block_names(f) == [OUT_BLOCK])
    assert int(height_pass.attrs["op_pattern"]) == OP_PATTERN_BROADCAST
    x = np.random.default_rng(0).standard_normal(shape).astype("float32")
    got = run(ours, x)
    np.testing.assert_array_equal(got, run(topi, x))
    if mode in TORCH_ALIGN:
        expected = torch.nn.functional.interpolate(torch.from_numpy(x), size, mode="bilinear", align_corners=TORCH_ALIGN[mode])
        np.testing.assert_allclose(got, expected.numpy(), atol=1e-6)


ONE_BLOCK = {
    "nearest": ((1, 3, 4, 4), (8, 8), {"method": "nearest_neighbor", "coordinate_transformation_mode": "asymmetric",
                                        "rounding_method": "floor"}),
    "cubic": ((1, 3, 4, 4), (8, 8), {"method": "cubic"}),
    "height shrinks 3x": ((1, 3, 21, 4), (7, 8), {"method": "linear"}),
    "NHWC": ((1, 4, 4, 3), (8, 8), {"method": "linear", "layout": "NHWC"}),
}


@pytest.mark.parametrize("case", ONE_BLOCK)
def test_other_resizes_keep_tvms_legalization(case):
    shape, size, attrs = ONE_BLOCK[case]
    mod = resize_module(shape, size, **attrs)
    assert tvm_ffi.structural_equal(legalized(mod, True), legalized(mod, False))


def test_height_pass_fuses_into_a_conv_epilogue():
    """TopFormer's injection module: the height passes run in the conv's kernel, the width passes
    stay kernels of their own."""
    mod = fused_module(injection(8, 12, (16, 24)), (1, 8, 16, 24), (1, 12, 4, 6), (1, 12, 8, 12))
    blocks = kernel_blocks(mod)
    conv_kernel = next(b for b in blocks.values() if "conv2d_nchw" in b)
    assert sum(bool(re.fullmatch(rf"{OUT_BLOCK}\d*", b)) for b in conv_kernel) == 2  # FuseTIR numbers them
    assert ROWS_BLOCK not in conv_kernel
    assert sorted(b for b in blocks.values() if "conv2d_nchw" not in b) == [[ROWS_BLOCK], [ROWS_BLOCK]]
    assert len(kernel_calls(mod)) == 3


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda x: resized(x, (16, 24)), id="model output"),
        pytest.param(lambda x: relax.op.concat([resized(x, (16, 24)), relax.op.nn.relu(resized(x, (16, 24)))], axis=1),
                     id="concat"),
    ],
)
def test_passes_stay_one_kernel_outside_conv_epilogues(build):
    blocks = list(kernel_blocks(fused_module(build, (1, 3, 8, 12))).values())
    assert all(b.index(ROWS_BLOCK) < b.index(OUT_BLOCK) for b in blocks if OUT_BLOCK in b)
    assert not [b for b in blocks if OUT_BLOCK not in b], blocks
