"""Convs on ragged output rows computed on whole vectors and cropped in their own kernel: the
numbers of TVM's own legalization, one kernel with the epilogue, scheduled by ``conv2d`` or
``depthwise_conv2d``; the convs it does not suit are left as they were."""

from __future__ import annotations

import numpy as np
import pytest

from edgeprune.compiler.passes.pad_conv_width import CROP_BLOCK, padded_columns, row_extra
from edgeprune.compiler.passes.structure import block_names
from edgeprune.compiler.schedules.conv_analysis import analyze_conv
from tests.compiler.schedules.cases import TARGET, check_rule, conv, prim_func, run


@pytest.mark.parametrize(("ow", "granule", "extra"), [
    (7, 8, 1), (14, 8, 2), (28, 8, 4), (56, 8, 0), (12, 8, 4), (7, 4, 1), (5, 8, 0), (3, 8, 0), (9, 8, 0),
])
def test_rows_are_widened_to_whole_vectors_unless_a_third_would_be_padding(ow, granule, extra):
    assert padded_columns(ow, granule) == extra


@pytest.mark.parametrize(("ow", "lanes", "depthwise", "extra"), [
    (56, 16, False, 8), (28, 16, False, 4), (14, 16, False, 2), (7, 16, False, 1), (8, 16, False, 0),
    (64, 16, False, 0), (56, 16, True, 0), (28, 16, True, 4), (56, 8, False, 0), (7, 4, False, 1),
])
def test_ungrouped_rows_take_the_full_vector_width_where_its_padding_is_small(ow, lanes, depthwise, extra):
    assert row_extra(ow, lanes, depthwise) == extra


def widened_and_plain(build, shape):
    with TARGET:  # the pass applies to CPU builds only: without a target it leaves every conv alone
        widened = prim_func(build, shape)
    return widened, prim_func(build, shape)


CASES = {  # builder, input shape, output columns the conv computes, the rule that schedules it
    "3x3 at 7x7, bias + relu": (conv(16, 24, 3), (1, 16, 7, 7), 8, "conv2d"),
    "3x3 stride 2 to 7 columns": (conv(8, 16, 3, stride=2), (1, 8, 13, 14), 8, "conv2d"),
    "dilated 3x3, hard-swish": (conv(8, 8, 3, dilation=2, epilogue="bias_hswish"), (1, 8, 14, 14), 16, "conv2d"),
    "1x1 stride 2": (conv(8, 8, 1, stride=2), (1, 8, 14, 14), 8, "conv2d"),
    "grouped 3x3 at 7x7, groups of 16 (RegNetX)": (conv(32, 32, 3, groups=2), (1, 32, 7, 7), 8, "conv2d"),
    "depthwise 3x3 at 7x7": (conv(16, 16, 3, groups=16), (1, 16, 7, 7), 8, "depthwise_conv2d"),
    "depthwise 5x5 stride 2 to 14 columns": (conv(12, 12, 5, stride=2, groups=12), (1, 12, 28, 28), 16,
                                             "depthwise_conv2d"),
}


@pytest.mark.parametrize("case", CASES)
def test_widened_conv_is_one_kernel_with_its_epilogue_and_tvms_numbers(case):
    build, shape, columns, rule = CASES[case]
    widened, plain = widened_and_plain(build, shape)
    assert CROP_BLOCK in block_names(widened) and CROP_BLOCK not in block_names(plain)
    assert analyze_conv(widened)[0].ow == columns
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal([int(d) for d in p.shape]).astype("float32") for p in plain.params[:-1]]
    np.testing.assert_allclose(run(widened, inputs), run(plain, inputs), rtol=1e-5, atol=1e-5)
    check_rule(widened, rule)


@pytest.mark.parametrize(("build", "shape"), [
    (conv(16, 16, 1), (1, 16, 7, 7)),  # pointwise: a flattened GEMM, its vectors run across rows
    (conv(8, 8, 3), (1, 8, 16, 16)),  # whole vectors already
    (conv(8, 8, 3), (1, 8, 5, 5)),  # three fifths would be padding
])
def test_convs_the_widening_does_not_suit_keep_tvms_legalization(build, shape):
    widened, plain = widened_and_plain(build, shape)
    assert block_names(widened) == block_names(plain)
