"""A depthwise conv and the pointwise conv reading it merged into one kernel: odd channel counts
(no multiple of the vector width or the channel tile), odd sizes, stride 2 on even and odd
widths, 5x5, dilation, a 1x1 depthwise (TopFormer's seg head), a residual and a hardswish."""

import pytest

from tests.compiler.schedules.cases import check_rule, prim_func, separable

TALL_AND_FLAT = ({"tile_y": 1, "dw_rows": 1}, {"tile_y": 8, "dw_rows": 4})


CASES = {
    "odd channels, 3x3": (separable(5, 7, 3), [(1, 5, 13, 11)]),
    "residual": (separable(16, 16, 3, epilogue="bias_relu6_residual"), [(1, 16, 20, 37), (1, 16, 20, 37)]),
    "3x3 stride 2, even width": (separable(8, 12, 3, stride=2), [(1, 8, 17, 34)]),
    "3x3 stride 2, odd width": (separable(6, 9, 3, stride=2), [(1, 6, 21, 19)]),
    "5x5 stride 2": (separable(7, 10, 5, stride=2), [(1, 7, 19, 22)]),
    "dilated 3x3": (separable(12, 20, 3, dilation=3), [(1, 12, 15, 18)]),
    "1x1 depthwise": (separable(24, 30, 1), [(1, 24, 9, 8)]),
    "hardswish pointwise": (separable(16, 24, 3, epilogue="bias_hswish"), [(1, 16, 9, 8)]),
    # the depthwise's result read twice by its epilogue (MobileNetV3)
    "hardswish depthwise": (separable(16, 24, 3, depthwise_epilogue="bias_hswish"), [(1, 16, 9, 8)]),
}


@pytest.mark.parametrize("case", CASES)
def test_depthwise_pointwise(case):
    build, shapes = CASES[case]
    check_rule(prim_func(build, *shapes, merge_convs=True), "depthwise_pointwise", extra=TALL_AND_FLAT)
