"""Depthwise convolutions: 3x3 and 5x5, stride 2 on odd sizes, dilation, hardswish epilogue."""

import pytest

from tests.compiler.schedules.cases import check_rule, conv, prim_func

CASES = {
    "3x3": (conv(20, 20, 3, groups=20), [(1, 20, 17, 13)]),
    "5x5 stride 2": (conv(24, 24, 5, stride=2, groups=24), [(1, 24, 17, 15)]),
    "3x3 stride 2 even": (conv(16, 16, 3, stride=2, groups=16), [(1, 16, 32, 34)]),
    "3x3 stride 2, row of 10": (conv(10, 10, 3, stride=2, groups=10), [(1, 10, 21, 19)]),  # 8-wide tiles + a partial one
    "dilated hswish": (conv(12, 12, 3, dilation=2, groups=12, epilogue="bias_hswish"), [(1, 12, 11, 10)]),
    # one-column outputs (TopFormer's last stage at 64x64 inputs) fell back to the generic schedule
    "1x1 map": (conv(16, 16, 3, groups=16), [(1, 16, 1, 1)]),
    "stride 2 to one column": (conv(16, 16, 3, stride=2, groups=16), [(1, 16, 3, 2)]),
}


@pytest.mark.parametrize("case", CASES)
def test_depthwise(case):
    build, shapes = CASES[case]
    check_rule(prim_func(build, *shapes), "depthwise_conv2d")
