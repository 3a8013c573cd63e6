"""Merge a depthwise conv group into the pointwise (1x1) conv group that reads it.

A depthwise-separable block (MobileNetV2's first block, TopFormer's ``layers.0`` and its seg
head, an inverted residual whose expand was not merged) computes ``pw(act(dw(x)))``. As two
kernels the depthwise output goes through memory in full; in one (``compiler.schedules.cpu.
depthwise_pointwise``) each task computes a band of depthwise rows, all channels, and the
pointwise conv consumes them while they are in cache. The pointwise group's epilogue may read
other tensors (a residual). Pairs are found and merged by ``merge_conv_groups``.

Merged only where a band of two output rows, all channels, fits the rule's L2 budget: past
it the band buffers leave L2 and the merged kernel loses the cache reuse it exists for
(DeepLabV3+'s 144-320 channel pairs at 128x256, and ASPP's dilated ones at 32x64 whose bands
copy 13-37 input rows). The budget was chosen on whole models against ONNX Runtime
(benchmarks/compiler_vs_ort.py measures it).
"""

from __future__ import annotations

import tvm

from edgeprune.compiler.passes.merge_conv_groups import merge_conv_groups
from edgeprune.compiler.schedules.conv_analysis import ConvGeometry
from edgeprune.compiler.schedules.cpu.depthwise_pointwise import BAND_BYTES, band_bytes


def FuseDepthwisePointwise(max_band_bytes: int = BAND_BYTES) -> tvm.transform.Pass:  # noqa: N802 - pass naming
    """Merge the depthwise/pointwise group pairs whose two-row band takes at most ``max_band_bytes``."""

    def mergeable(depthwise: ConvGeometry, pointwise: ConvGeometry) -> bool:
        """Whether ``schedules.cpu.depthwise_pointwise`` takes this pair and merging it pays."""
        return (
            depthwise.depthwise and pointwise.pointwise
            and depthwise.padded  # the rule copies its band in the padding block
            and depthwise.ow > 1  # one-column outputs leave every vector lane but one idle
            and band_bytes(depthwise.workload("depthwise_conv2d", "float32", ""), 2) <= max_band_bytes
        )

    return merge_conv_groups("FuseDepthwisePointwise", mergeable)
