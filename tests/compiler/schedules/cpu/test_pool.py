"""Average (ceil mode, padded), max and global pooling; uneven adaptive windows go generic."""

import pytest
from tvm import relax

from tests.compiler.schedules.cases import check_rule, prim_func

CASES = {
    "avg pool ceil mode": (lambda x: relax.op.nn.avg_pool2d(x, 3, 2, padding=1, ceil_mode=True), "pool2d"),
    "max pool": (lambda x: relax.op.nn.max_pool2d(x, 3, 2, padding=1), "pool2d"),
    "global avg pool": (lambda x: relax.op.nn.adaptive_avg_pool2d(x, 1), "pool2d"),
    "adaptive pool uneven windows": (lambda x: relax.op.nn.adaptive_avg_pool2d(x, (2, 3)), "generic"),
}


@pytest.mark.parametrize("case", CASES)
def test_pool(case):
    build, rule = CASES[case]
    check_rule(prim_func(build, (1, 6, 13, 11)), rule)
