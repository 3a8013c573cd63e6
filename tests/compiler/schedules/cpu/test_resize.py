"""Resize: the separable bilinear form (up, mixed up/down, few channels, with an epilogue) and
TOPI's one-block form (nearest, and bilinear shrinking the height more than 2x)."""

import pytest
from tvm import relax

from tests.compiler.schedules.cases import check_rule, const, prim_func

STAGES = ({"stage": "channel", "gather_vec": 1}, {"stage": "whole", "gather_vec": 0})


def bilinear(size, mode="half_pixel"):
    return lambda x: relax.op.image.resize2d(x, size, method="linear", coordinate_transformation_mode=mode)


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
