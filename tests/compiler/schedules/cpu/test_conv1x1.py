"""Pointwise convolutions: odd channel counts and sizes, residual and no epilogue."""

import pytest

from tests.compiler.schedules.cases import check_rule, conv, prim_func

CASES = {
    "odd channels and size": (conv(13, 30, 1), [(1, 13, 9, 11)]),
    "residual relu6": (conv(24, 24, 1, epilogue="bias_relu6_residual"), [(1, 24, 7, 19), (1, 24, 7, 19)]),
    "no epilogue": (conv(8, 19, 1, epilogue="none"), [(1, 8, 5, 5)]),
    "large map, packed panels": (conv(20, 12, 1), [(1, 20, 40, 50)]),
}


@pytest.mark.parametrize("case", CASES)
def test_conv1x1(case):
    build, shapes = CASES[case]
    check_rule(prim_func(build, *shapes), "conv1x1")
