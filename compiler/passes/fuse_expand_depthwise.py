"""Merge an inverted residual's expand (1x1 conv) group into the depthwise group that reads it.

MobileNetV2-style blocks (TopFormer's token pyramid, DeepLabV3+'s backbone) compute
``expand = act(conv1x1(x) + b)`` with 4-6x the input's channels at full resolution, and a
depthwise conv then reads it once. As two kernels the expanded map goes through memory in full:
16.7 MB written and read back in TopFormer-Tiny's first stage at 512x512. In one kernel
(``compiler.schedules.cpu.expand_depthwise``) each task computes the expanded rows a band of
depthwise outputs needs into a small buffer and consumes them while they are in cache.

Pairs are found and merged by ``merge_conv_groups`` (the expanded map read by the depthwise
group alone, the expand's other inputs constants), so the merged group's ``FuseTIR`` PrimFunc
holds both convs and their epilogues, and nothing else.

Which blocks are merged (``MergeLimits``): those whose expanded map has at most 128x128 pixels,
and at any size those whose expand reads at most 16 channels. Such an expand does 2 x 16 flops
per 4-byte element it writes, so writing the expanded map out and reading it back is most of
its cost, and that is what merging saves. An expand reading more channels does more work
per element, so the halo rows each band recomputes can cost more than the traffic saved:
DeepLabV3+'s large-map blocks with 24-32 input channels (128x256 and up) stay two kernels.
The limits were chosen on whole models, builds with different limits alternating in one run
against ONNX Runtime (benchmarks/compiler_vs_ort.py measures it; compare within a run: the
machine's load varies between runs, and the merge, saving memory traffic, pays most when
other tenants load the memory bus).
"""

from __future__ import annotations

from dataclasses import dataclass

import tvm

from edgeprune.compiler.passes.merge_conv_groups import merge_conv_groups
from edgeprune.compiler.schedules.conv_analysis import ConvGeometry


@dataclass(frozen=True)
class MergeLimits:
    """Which expand/depthwise pairs are worth one kernel (the reasons in the module docstring)."""

    max_pixels: int = 128 * 128  # expanded maps up to this size, whatever the channels
    any_size_max_cin: int = 16  # expands reading at most this many channels, at any size

    def admit(self, expand: ConvGeometry) -> bool:
        return expand.oh * expand.ow <= self.max_pixels or expand.ci <= self.any_size_max_cin


def FuseExpandDepthwise(limits: MergeLimits = MergeLimits()) -> tvm.transform.Pass:  # noqa: N802 - pass naming
    """Merge the expand/depthwise group pairs ``limits`` admits."""

    def mergeable(expand: ConvGeometry, depthwise: ConvGeometry) -> bool:
        """Whether ``schedules.cpu.expand_depthwise`` takes this pair and merging it pays."""
        return (
            expand.pointwise and depthwise.depthwise
            and depthwise.padded  # the rule builds its band in the padding block
            and depthwise.ow > 1  # the rule's schedule fails on one-column outputs (TopFormer at 64x64)
            and limits.admit(expand)
        )

    return merge_conv_groups("FuseExpandDepthwise", mergeable)
