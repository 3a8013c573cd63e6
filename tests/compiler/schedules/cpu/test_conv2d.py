"""General convolutions: strided stem, grouped and dilated, strided 1x1, 5x5."""

import pytest

from tests.compiler.schedules.cases import check_rule, conv, prim_func

CASES = {
    "stem 3x3 stride 2": (conv(3, 16, 3, stride=2), [(1, 3, 33, 31)]),
    "grouped dilated 3x3": (conv(8, 12, 3, dilation=2, groups=4), [(1, 8, 9, 9)]),
    "1x1 stride 2": (conv(16, 12, 1, stride=2), [(1, 16, 9, 11)]),
    "5x5 odd channels": (conv(5, 7, 5, epilogue="bias_hswish"), [(1, 5, 6, 7)]),
    "3x3 on 7 rows": (conv(8, 12, 3), [(1, 8, 7, 9)]),
}
# Register rows that do not divide the map's height, or are taller than the band.
ROW_TILES = ({"reg_rows": 4, "tile_y": 4}, {"reg_rows": 2, "tile_y": 8}, {"reg_rows": 4, "tile_y": 2})


@pytest.mark.parametrize("case", CASES)
def test_conv2d(case):
    build, shapes = CASES[case]
    check_rule(prim_func(build, *shapes), "conv2d", extra=ROW_TILES)
