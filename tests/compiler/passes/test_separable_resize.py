"""Bilinear resize legalized in two passes: TOPI's numbers bit for bit, PyTorch's within
rounding, and TVM's one-block form wherever the separable one does not apply."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import tvm
import tvm_ffi
from tvm import relax, s_tir

from compiler.passes.separable_resize import OUT_BLOCK, ROWS_BLOCK, separable_resize
from compiler.schedules.base import blocks_of


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


def block_names(mod: tvm.IRModule) -> list[str]:
    func = next(f for f in mod.functions.values() if isinstance(f, tvm.tirx.PrimFunc))
    sch = s_tir.Schedule(func)
    return [sch.get(block).name_hint for block in blocks_of(sch)]


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
    assert block_names(ours) == [ROWS_BLOCK, OUT_BLOCK]
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
