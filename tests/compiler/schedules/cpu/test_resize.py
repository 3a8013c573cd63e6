"""Resize: the separable bilinear form (up, mixed up/down, few channels, with an epilogue), its
width pass alone (the height pass went into a conv's epilogue) and TOPI's one-block form
(nearest, and bilinear shrinking the height more than 2x)."""

import pytest
from tvm import relax

from edgeprune.compiler.passes.separable_resize import ROWS_BLOCK
from tests.compiler.schedules.cases import check_rule, const, fused_module, injection, kernel_with, prim_func, resized

STAGES = ({"stage": "channel", "gather_vec": 1}, {"stage": "whole", "gather_vec": 0})


def bilinear(size, mode="half_pixel"):
    return lambda x: resized(x, size, mode)


SEPARABLE = {
    "half pixel upsample": (bilinear((20, 31)), (1, 5, 7, 9)),
    "align corners, width shrinks": (bilinear((13, 6), "align_corners"), (1, 3, 5, 11)),
    "wide map": (bilinear((16, 64)), (1, 4, 8, 16)),
    "one channel": (bilinear((24, 40), "pytorch_half_pixel"), (1, 1, 6, 10)),
    "height halves": (bilinear((5, 9), "asymmetric"), (2, 3, 10, 9)),
    "gated epilogue": (lambda x: relax.op.nn.relu(relax.op.multiply(bilinear((16, 16))(x), const((1, 6, 1, 1), 3))),
                       (1, 6, 4, 4)),
}


@pytest.mark.parametrize("case", SEPARABLE)
def test_separable_resize(case):
    build, shape = SEPARABLE[case]
    check_rule(prim_func(build, shape), "resize2d_separable", extra=STAGES)


@pytest.mark.parametrize(
    "small, size",
    [
        pytest.param((1, 7, 5, 9), (10, 33), id="odd width"),
        pytest.param((1, 1, 2, 3), (4, 40), id="fewer rows than tasks"),
        pytest.param((2, 5, 6, 20), (12, 9), id="width shrinks"),
    ],
)
def test_width_pass_alone(small, size):
    mod = fused_module(injection(4, small[1], size), (small[0], 4, *size), small, small)  # one width pass, twice
    check_rule(kernel_with(mod, ROWS_BLOCK), "resize_rows", extra=({"tasks_per_core": 4, "gather_vec": 0}, {"vec": 4}))


ONE_BLOCK = {
    "nearest": (lambda x: relax.op.image.resize2d(x, (14, 18), method="nearest_neighbor",
                                                  coordinate_transformation_mode="asymmetric", rounding_method="floor"),
                (1, 3, 7, 9)),
    "bilinear shrinking 3x": (bilinear((7, 5)), (1, 3, 21, 15)),
}


@pytest.mark.parametrize("case", ONE_BLOCK)
def test_one_block_resize(case):
    build, shape = ONE_BLOCK[case]
    check_rule(prim_func(build, shape), "resize2d")
