"""Which expand/depthwise pairs ``FuseExpandDepthwise`` merges into one kernel, and which it
must leave apart (the expanded map read elsewhere too, a large map of many channels, rows that
are no whole vectors of the CPU target)."""

from __future__ import annotations

import pytest
from tvm import relax

from edgeprune.compiler.target import hardware_of
from tests.compiler.schedules.cases import TARGET, conv, convs_per_kernel, expand_depthwise, fused_module


def test_inverted_residual_merges_expand_and_depthwise_only():
    project = conv(48, 8, 1, epilogue="bias_relu6_residual")
    block = lambda x: project(expand_depthwise(8, 48, 3)(x), x)  # noqa: E731
    assert convs_per_kernel(fused_module(block, (1, 8, 20, 20), merge_convs=True)) == [1, 2]
    assert convs_per_kernel(fused_module(block, (1, 8, 20, 20))) == [1, 1, 1]


def read_by_depthwise_epilogue(x: relax.Expr) -> relax.Expr:
    """``dw(y) + y``: the expanded map ``y`` is also the depthwise group's residual input."""
    y = conv(8, 24, 1)(x)
    return relax.op.add(conv(24, 24, 3, groups=24)(y), y)


def read_by_two_depthwise(x: relax.Expr) -> relax.Expr:
    y = conv(8, 24, 1)(x)
    return relax.op.add(conv(24, 24, 3, groups=24)(y), conv(24, 24, 5, groups=24)(y))


@pytest.mark.parametrize("build", [read_by_depthwise_epilogue, read_by_two_depthwise])
def test_expanded_map_read_elsewhere_is_not_merged(build):
    mod = fused_module(build, (1, 8, 12, 12), merge_convs=True)
    assert max(convs_per_kernel(mod)) == 1


@pytest.mark.parametrize(
    "cin, h, w, merged",
    [(24, 128, 128, True), (24, 129, 128, False), (16, 129, 128, True)],  # any size with few input channels
)
def test_merged_maps_up_to_128x128_or_expands_of_few_channels(cin, h, w, merged):
    mod = fused_module(expand_depthwise(cin, 2 * cin, 3), (1, cin, h, w), merge_convs=True)
    assert convs_per_kernel(mod) == ([2] if merged else [1, 1])


@pytest.mark.parametrize("shape, stride", [((1, 8, 3, 1), 1), ((1, 8, 2, 2), 2), ((1, 8, 1, 1), 1)])
def test_one_column_outputs_are_not_merged(shape, stride):
    """Regression: TopFormer-Tiny at 64x64 ends at 1x1 maps, where the merged kernel's schedule
    failed and the pair fell back to the generic schedule."""
    mod = fused_module(expand_depthwise(8, 16, 3, stride=stride), shape, merge_convs=True)
    assert convs_per_kernel(mod) == [1, 1]


@pytest.mark.parametrize("stride", [1, 2])
def test_rows_must_be_whole_vectors_of_the_cpu_target(stride):
    """Regression: the merged kernel ran ragged rows (the 56-, 28-, 14- and 7-column maps of
    224x224 backbones) as scalars, 4-5x slower than the two kernels apart (MobileNetV2)."""
    lanes = hardware_of(TARGET).vector_lanes
    whole, ragged = 2 * lanes * stride, (2 * lanes + 2) * stride  # input widths: whole or ragged output rows
    with TARGET:
        for width, merged in ((whole, True), (ragged, False)):
            mod = fused_module(expand_depthwise(8, 24, 3, stride=stride), (1, 8, 16, width), merge_convs=True)
            assert convs_per_kernel(mod) == ([2] if merged else [1, 1]), width
