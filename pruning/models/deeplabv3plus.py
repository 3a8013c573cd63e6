"""DeepLabV3+ with a MobileNetV2 backbone, in plain PyTorch.

Chen, L.-C., Zhu, Y., Papandreou, G., Schroff, F., Adam, H.: "Encoder-Decoder with Atrous
Separable Convolution for Semantic Image Segmentation", ECCV 2018; backbone from Sandler, M.,
Howard, A., Zhu, M., Zhmoginov, A., Chen, L.-C.: "MobileNetV2: Inverted Residuals and Linear
Bottlenecks", CVPR 2018 (width 1.0, without the final 1280-channel conv and the classifier).

MobileNetV2 features (dilated after ``output_stride``) -> ASPP (1x1, three atrous 3x3 and an
image-pooling branch, concatenated and projected) -> decoder: upsample to stride 4, concatenate
the 48-channel projection of the stride-4 MobileNetV2 features, two 3x3 convs, 1x1 classifier.
The logits come out at 1/4 of the input resolution; the caller upsamples.

Head tuning against the published 2.26M parameters and 9.5 GMACs at 512x1024 (19 classes);
the backbone alone is 1.81M parameters, and 4.76 GMACs at output stride 16. Measured (MACs
of convs and matmuls, ``torch.utils.flop_counter``):

====================================================  ======  =====
ASPP / decoder 3x3 convs, ASPP channels, out. stride  params  GMACs
====================================================  ======  =====
separable, 160, OS16                                  2.28M    7.64
**separable, 192, OS16 (default)**                    2.41M    8.66
separable, 256, OS16                                  2.72M   11.18
separable ASPP, plain decoder, 80, OS16 (no option)  2.14M   10.05
plain, 96, OS16                                       2.96M   13.51
separable, 96, OS8                                    2.05M   17.72
====================================================  ======  =====

The default keeps the paper's atrous separable convs in both ASPP and decoder and lands within
10% of both figures (+6.6% params, -8.8% MACs).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from edgeprune.pruning.models.common import (
    ConvBNAct,
    InvertedResidual,
    init_classifier,
    init_weights,
    make_divisible,
)

# MobileNetV2 stages: (expand ratio, output channels, repeats, stride).
MOBILENETV2_STAGES = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
LOW_LEVEL_STRIDE = 4


@dataclass(frozen=True)
class DeepLabV3PlusConfig:
    num_classes: int = 19
    width_mult: float = 1.0
    output_stride: int = 16  # stride of the ASPP input; later MobileNetV2 stages are dilated
    aspp_channels: int = 192
    aspp_rates: tuple[int, ...] = (6, 12, 18)  # at output stride 16; doubled at 8
    separable: bool = True  # depthwise-separable atrous and decoder convs
    low_level_channels: int = 48
    dropout: float = 0.1


class MobileNetV2Encoder(nn.Module):
    """MobileNetV2 features, split after the last stride-4 block into ``low`` and ``high``.

    ``forward`` returns the stride-4 features and the ``output_stride`` features.
    """

    def __init__(self, width_mult: float, output_stride: int) -> None:
        super().__init__()
        in_channels = make_divisible(32 * width_mult)
        low: list[nn.Module] = [ConvBNAct(3, in_channels, 3, stride=2, act=nn.ReLU6)]
        high: list[nn.Module] = []
        stride, dilation = 2, 1
        for expand, channels, repeats, stage_stride in MOBILENETV2_STAGES:
            out_channels = make_divisible(channels * width_mult)
            first_dilation = dilation
            if stride * stage_stride > output_stride:
                # Keep the resolution: trade this stage's stride for dilation.
                dilation *= stage_stride
                stage_stride = 1
            stride *= stage_stride
            stage = low if stride <= LOW_LEVEL_STRIDE else high
            for i in range(repeats):
                stage.append(
                    InvertedResidual(
                        in_channels,
                        out_channels,
                        stage_stride if i == 0 else 1,
                        expand,
                        dilation=first_dilation if i == 0 else dilation,
                    )
                )
                in_channels = out_channels
            if stride == LOW_LEVEL_STRIDE:
                self.low_level_channels = out_channels
        self.low = nn.Sequential(*low)
        self.high = nn.Sequential(*high)
        self.out_channels = in_channels

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        low_level = self.low(x)
        return low_level, self.high(low_level)


def _conv3x3(in_channels: int, out_channels: int, dilation: int, separable: bool) -> nn.Sequential:
    """3x3 Conv-BN-ReLU, or depthwise 3x3 Conv-BN-ReLU then pointwise Conv-BN-ReLU."""
    if not separable:
        return ConvBNAct(in_channels, out_channels, 3, dilation=dilation, act=nn.ReLU)
    return nn.Sequential(
        ConvBNAct(in_channels, in_channels, 3, dilation=dilation, groups=in_channels, act=nn.ReLU),
        ConvBNAct(in_channels, out_channels, 1, act=nn.ReLU),
    )


class ImagePool(nn.Module):
    """ASPP image-level branch: global average pool, 1x1 Conv-BN-ReLU, broadcast back.

    Its BN sees one value per image and channel, so training needs batches of 2 or more.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv = ConvBNAct(in_channels, out_channels, 1, act=nn.ReLU)

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(self.conv(self.pool(x)), size=x.shape[-2:], mode="bilinear", align_corners=False)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: parallel branches, concatenated, 1x1 projection."""

    def __init__(self, in_channels: int, channels: int, rates: tuple[int, ...], separable: bool) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            [ConvBNAct(in_channels, channels, 1, act=nn.ReLU)]
            + [_conv3x3(in_channels, channels, rate, separable) for rate in rates]
            + [ImagePool(in_channels, channels)]
        )
        self.project = ConvBNAct(channels * (len(rates) + 2), channels, 1, act=nn.ReLU)

    def forward(self, x: Tensor) -> Tensor:
        return self.project(torch.cat([branch(x) for branch in self.branches], dim=1))


class Decoder(nn.Module):
    """Fuse the upsampled ASPP output with projected stride-4 features, then classify."""

    def __init__(
        self,
        channels: int,
        low_level_in: int,
        low_level_channels: int,
        num_classes: int,
        separable: bool,
        dropout: float,
    ) -> None:
        super().__init__()
        self.low_level = ConvBNAct(low_level_in, low_level_channels, 1, act=nn.ReLU)
        self.fuse = nn.Sequential(
            _conv3x3(channels + low_level_channels, channels, 1, separable),
            _conv3x3(channels, channels, 1, separable),
        )
        self.dropout = nn.Dropout2d(dropout)
        self.cls_seg = nn.Conv2d(channels, num_classes, 1)

    def forward(self, aspp_out: Tensor, low_level: Tensor) -> Tensor:
        upsampled = F.interpolate(aspp_out, size=low_level.shape[-2:], mode="bilinear", align_corners=False)
        x = self.fuse(torch.cat([upsampled, self.low_level(low_level)], dim=1))
        return self.cls_seg(self.dropout(x))


class DeepLabV3Plus(nn.Module):
    """DeepLabV3+ / MobileNetV2; ``forward`` returns logits at 1/4 of the input size."""

    def __init__(self, config: DeepLabV3PlusConfig) -> None:
        super().__init__()
        if config.output_stride not in (8, 16, 32):
            raise ValueError(f"output_stride must be 8, 16 or 32, got {config.output_stride}")
        self.backbone = MobileNetV2Encoder(config.width_mult, config.output_stride)
        rates = tuple(r * 16 // config.output_stride for r in config.aspp_rates)
        self.aspp = ASPP(self.backbone.out_channels, config.aspp_channels, rates, config.separable)
        self.decoder = Decoder(
            config.aspp_channels,
            self.backbone.low_level_channels,
            config.low_level_channels,
            config.num_classes,
            config.separable,
            config.dropout,
        )
        init_weights(self)
        init_classifier(self.decoder.cls_seg)
        self.edgeprune_config = {"architecture": "deeplabv3plus-mobilenetv2", **asdict(config)}

    def forward(self, x: Tensor) -> Tensor:
        low_level, high_level = self.backbone(x)
        return self.decoder(self.aspp(high_level), low_level)


DEFAULT = DeepLabV3PlusConfig()


def deeplabv3plus(config: DeepLabV3PlusConfig = DEFAULT, num_classes: int | None = None) -> DeepLabV3Plus:
    """Build ``config``, optionally with another number of classes."""
    if num_classes is not None:
        config = replace(config, num_classes=num_classes)
    return DeepLabV3Plus(config)
