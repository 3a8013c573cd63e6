"""Bilinear resize: upsampling with half-pixel centres, and align-corners down/upsampling."""

import pytest
from tvm import relax

from tests.compiler.schedules.cases import check_rule, prim_func

CASES = {
    "half pixel upsample": ((20, 31), "half_pixel", (1, 5, 7, 9)),
    "align corners": ((13, 6), "align_corners", (1, 3, 5, 11)),
    "wide map": ((16, 64), "half_pixel", (1, 4, 8, 16)),
}


@pytest.mark.parametrize("case", CASES)
def test_resize(case):
    size, mode, shape = CASES[case]
    build = lambda x: relax.op.image.resize2d(x, size, method="linear", coordinate_transformation_mode=mode)  # noqa: E731
    check_rule(prim_func(build, shape), "resize2d")
