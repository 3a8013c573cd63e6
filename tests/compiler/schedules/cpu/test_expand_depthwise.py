"""An inverted residual's expand 1x1 and depthwise conv merged into one kernel: odd channel
counts (no multiple of the vector width), odd sizes, stride 2 (both padded layouts), 5x5, a
hardswish depthwise."""

import pytest

from tests.compiler.schedules.cases import check_rule, expand_depthwise, prim_func

STRIDE_2 = ({"tile_y": 1}, {"deinterleave": 1}, {"deinterleave": 1, "tile_y": 1})
CASES = {
    "odd channels, 3x3": (expand_depthwise(5, 20, 3), (1, 5, 13, 11), ({"tile_y": 1},)),
    "3x3 stride 2, odd size": (expand_depthwise(8, 24, 3, stride=2), (1, 8, 17, 15), STRIDE_2),
    "3x3 stride 2, row of 10": (expand_depthwise(6, 36, 3, stride=2), (1, 6, 21, 19), STRIDE_2),
    "5x5 stride 2": (expand_depthwise(7, 42, 5, stride=2), (1, 7, 19, 23), STRIDE_2),
    "hardswish depthwise": (expand_depthwise(16, 64, 3, epilogue="bias_hswish"), (1, 16, 9, 8), ()),
}


@pytest.mark.parametrize("case", CASES)
def test_expand_depthwise(case):
    build, shape, extra = CASES[case]
    check_rule(prim_func(build, shape, expand_depthwise=True), "expand_depthwise", extra=extra)
