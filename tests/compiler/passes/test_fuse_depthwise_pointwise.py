"""Which depthwise/pointwise pairs ``FuseDepthwisePointwise`` merges into one kernel, and which
it must leave apart (the depthwise output read elsewhere too, bands too large for L2, a
depthwise already merged with its expand)."""

from __future__ import annotations

import pytest
from tvm import relax

from edgeprune.compiler.target import hardware_of
from tests.compiler.schedules.cases import (
    TARGET,
    conv,
    convs_per_kernel,
    expand_depthwise,
    fused_module,
    separable,
)


def test_separable_block_with_residual_is_merged():
    block = lambda x: separable(16, 16, 3, epilogue="bias_relu6_residual")(x, x)  # noqa: E731
    assert convs_per_kernel(fused_module(block, (1, 16, 32, 32), merge_convs=True)) == [2]
    assert convs_per_kernel(fused_module(block, (1, 16, 32, 32))) == [1, 1]


def test_inverted_residual_keeps_its_expand_merge_and_projects_apart():
    """The depthwise is merged into its expand first; the projection stays its own kernel."""
    block = lambda x: conv(48, 8, 1, epilogue="bias_relu6_residual")(expand_depthwise(8, 48, 3)(x), x)  # noqa: E731
    assert convs_per_kernel(fused_module(block, (1, 8, 20, 20), merge_convs=True)) == [1, 2]


def test_separable_chain_merges_pairs_only():
    """Regression: DeepLabV3+'s decoder stacks separable convs, ``dw pw dw pw``; the middle
    ``pw dw`` is merged as an expand/depthwise pair, and the first depthwise was then merged
    into that pair as if it were a lone pointwise group (three convs in one kernel, which no
    rule schedules)."""
    block = lambda x: separable(24, 24, 3)(separable(24, 24, 3)(x))  # noqa: E731
    assert convs_per_kernel(fused_module(block, (1, 24, 8, 16), merge_convs=True)) == [1, 1, 2]


def read_twice(x: relax.Expr) -> relax.Expr:
    y = conv(8, 8, 3, groups=8)(x)
    return relax.op.add(conv(8, 8, 1)(y), y)


def test_depthwise_output_read_elsewhere_is_not_merged():
    assert max(convs_per_kernel(fused_module(read_twice, (1, 8, 12, 12), merge_convs=True))) == 1


@pytest.mark.parametrize(
    "channels, k, dilation, width, merged",
    [
        (32, 3, 1, 512, True),  # DeepLabV3+'s first block: 394 KB for two rows
        (144, 3, 1, 256, False),  # its unmerged 128x256 inverted residuals: 890 KB
        (320, 3, 18, 64, False),  # ASPP's dilated separable convs: 37 input rows per output row
        (128, 1, 1, 64, True),  # TopFormer's seg head: a 1x1 depthwise, 128 KB
    ],
)
def test_merged_where_a_two_row_band_fits_l2(channels, k, dilation, width, merged):
    block = separable(channels, 8, k, dilation=dilation)
    assert convs_per_kernel(fused_module(block, (1, channels, 4, width), merge_convs=True)) == ([2] if merged else [1, 1])


@pytest.mark.parametrize("shape, stride", [((1, 8, 3, 1), 1), ((1, 8, 2, 2), 2)])
def test_one_column_outputs_are_not_merged(shape, stride):
    assert convs_per_kernel(fused_module(separable(8, 8, 3, stride=stride), shape, merge_convs=True)) == [1, 1]


def test_ragged_rows_are_not_merged_on_a_cpu_target():
    """The merged kernel vectorises along rows: ragged ones would run as scalars."""
    lanes = hardware_of(TARGET).vector_lanes
    with TARGET:
        for width, merged in ((2 * lanes, True), (2 * lanes + 2, False)):
            mod = fused_module(separable(16, 16, 3), (1, 16, 16, width), merge_convs=True)
            assert convs_per_kernel(mod) == ([2] if merged else [1, 1]), width
