"""An inverted residual's expand 1x1 and depthwise conv merged into one kernel: odd channel
counts (no multiple of the vector width), odd sizes, stride 2 on even widths (de-interleaved
columns, the default there) and odd ones, 5x5, asymmetric padding, hardswish on either conv."""

import pytest
import tvm
from tvm import relax, s_tir

from edgeprune.compiler.schedules.registry import match
from tests.compiler.schedules.cases import RULES, check_rule, const, conv, expand_depthwise, prim_func

TALL_AND_FLAT = ({"tile_y": 1}, {"tile_y": 16})
EVEN_STRIDE_2 = (*TALL_AND_FLAT, {"deinterleave": 0})


def asymmetric_padding(x):
    """A stride-2 depthwise padded by 0 on the left and 1 on the right (TF "same" padding)."""
    y = conv(6, 24, 1)(x)
    y = relax.op.nn.conv2d(y, const((24, 1, 3, 3), 3), strides=2, padding=[1, 0, 1, 1], groups=24)
    return relax.op.add(y, const((1, 24, 1, 1), 4))


CASES = {
    "odd channels, 3x3": (expand_depthwise(5, 20, 3), (1, 5, 13, 11), TALL_AND_FLAT),
    "3x3 stride 2, even width": (expand_depthwise(8, 24, 3, stride=2), (1, 8, 17, 34), EVEN_STRIDE_2),
    "3x3 stride 2, odd width": (expand_depthwise(6, 36, 3, stride=2), (1, 6, 21, 19), TALL_AND_FLAT),
    "5x5 stride 2, even width": (expand_depthwise(7, 42, 5, stride=2), (1, 7, 19, 22), EVEN_STRIDE_2),
    "5x5 stride 2, odd width": (expand_depthwise(7, 42, 5, stride=2), (1, 7, 19, 23), TALL_AND_FLAT),
    "stride 2, asymmetric padding": (asymmetric_padding, (1, 6, 14, 16), ()),
    "hardswish depthwise": (expand_depthwise(16, 64, 3, epilogue="bias_hswish"), (1, 16, 9, 8), ()),
    # the expand's result read twice by its epilogue (MobileNetV3)
    "hardswish expand, stride 2": (expand_depthwise(8, 24, 5, stride=2, expand_epilogue="bias_hswish"), (1, 8, 16, 16),
                                   EVEN_STRIDE_2),
}


@pytest.mark.parametrize("case", CASES)
def test_expand_depthwise(case):
    build, shape, extra = CASES[case]
    check_rule(prim_func(build, shape, merge_convs=True), "expand_depthwise", extra=extra)


def test_more_depthwise_rows_per_step_than_the_band_has_is_the_bands_schedule():
    """A band of one row stepped two rows at a time put the epilogue over the next band's row as
    well, a row another task computes: with two threads it was written stale (zeros)."""
    func = prim_func(expand_depthwise(7, 42, 5, stride=2), (1, 7, 19, 23), merge_convs=True)
    rule, workload = match(RULES, func)
    base = {"tile_c": 14, "tile_y": 1, "vec": 8, "deinterleave": 0}
    assert rule.wasted(workload, {**base, "dw_rows": 2}) and not rule.wasted(workload, {**base, "dw_rows": 1})
    scheduled = []
    for dw_rows in (2, 1):
        sch = s_tir.Schedule(func)
        rule.apply(sch, workload, {**base, "dw_rows": dw_rows})
        scheduled.append(sch.mod["main"])
    tvm.ir.assert_structural_equal(*scheduled)
