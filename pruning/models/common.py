"""Building blocks shared by the built-in segmentation models.

Every block is made of ``nn`` layers only (no functional calls for anything with weights) so
that ``torch.fx.symbolic_trace`` sees each conv and norm as a module the pruning pass can walk.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

ActLayer = type[nn.Module] | None


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to the nearest multiple of ``divisor`` (MobileNet rule).

    The result is never below ``min_value`` (default ``divisor``) and never more than 10%
    below ``value``.
    """
    floor = divisor if min_value is None else min_value
    rounded = max(floor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class ConvBNAct(nn.Sequential):
    """``Conv2d`` (no bias) -> ``BatchNorm2d`` -> optional activation, "same" padding."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
        act: ActLayer = None,
    ) -> None:
        padding = dilation * (kernel_size // 2)
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=padding,
                dilation=dilation,
                groups=groups,
                bias=False,
            ),
            nn.BatchNorm2d(out_channels),
        ]
        if act is not None:
            layers.append(act())
        super().__init__(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2 inverted residual (Sandler et al., CVPR 2018).

    1x1 expansion (skipped when ``expand_ratio`` is 1) -> ``kernel_size`` depthwise conv ->
    linear 1x1 projection, with an identity shortcut when stride is 1 and widths match.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        expand_ratio: float,
        kernel_size: int = 3,
        dilation: int = 1,
        act: type[nn.Module] = nn.ReLU6,
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"inverted residual stride must be 1 or 2, got {stride}")
        hidden = int(round(in_channels * expand_ratio))
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNAct(in_channels, hidden, 1, act=act))
        layers += [
            ConvBNAct(hidden, hidden, kernel_size, stride, dilation, groups=hidden, act=act),
            ConvBNAct(hidden, out_channels, 1),
        ]
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_channels == out_channels

    def forward(self, x: Tensor) -> Tensor:
        if self.use_residual:
            return x + self.conv(x)
        return self.conv(x)


def init_weights(module: nn.Module) -> None:
    """Initialise for training from scratch: Kaiming-normal convs, BN weight 1 and bias 0.

    The conv fan-out is counted per group, ``k*k*out/groups`` (as TopFormer's ``init_weights``),
    so that depthwise convs are not initialised orders of magnitude too small.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            kh, kw = m.kernel_size
            fan_out = kh * kw * m.out_channels // m.groups
            nn.init.normal_(m.weight, mean=0.0, std=math.sqrt(2.0 / fan_out))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def init_classifier(conv: nn.Conv2d) -> None:
    """Small-normal init of a final 1x1 classifier (as mmseg's ``conv_seg``): std 0.01, bias 0."""
    nn.init.normal_(conv.weight, mean=0.0, std=0.01)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
