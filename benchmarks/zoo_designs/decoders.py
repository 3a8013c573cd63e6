"""Segmentation decoders after segmentation_models_pytorch's and torchvision's, on mobile encoders."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from benchmarks.zoo_designs.blocks import calibrated, conv_bn_act, upsample_like
from benchmarks.zoo_designs.encoders import MobileNetV2, MobileNetV3Large, ResNet18


class FPN(nn.Module):
    """smp's FPN: lateral 1x1 convs, top-down nearest x2 upsampling added, 3x3 segmentation blocks
    brought to 1/4 and merged by addition (or concatenation), a 1x1 head and a bilinear x4."""

    def __init__(self, encoder: nn.Module, num_classes: int, merge: str = "add", width: int = 64) -> None:
        super().__init__()
        self.encoder, self.merge = encoder, merge
        self.lateral = nn.ModuleList(nn.Conv2d(c, width, 1) for c in encoder.channels)
        self.smooth = nn.ModuleList(conv_bn_act(width, width // 2) for _ in encoder.channels)
        merged = width // 2 * (len(encoder.channels) if merge == "cat" else 1)
        self.head = nn.Conv2d(merged, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.encoder(x)
        p = self.lateral[-1](feats[-1])
        pyramid = [p]
        for lateral, f in zip(reversed(self.lateral[:-1]), reversed(feats[:-1])):
            p = lateral(f) + F.interpolate(p, scale_factor=2, mode="nearest")
            pyramid.insert(0, p)
        maps = [upsample_like(smooth(p), pyramid[0]) for smooth, p in zip(self.smooth, pyramid)]
        y = torch.cat(maps, dim=1) if self.merge == "cat" else sum(maps[1:], maps[0])
        return F.interpolate(self.head(y), scale_factor=4, mode="bilinear", align_corners=False)


class UNet(nn.Module):
    """smp's Unet: nearest x2 upsampling, the skip concatenated, two conv-BN-ReLU per stage."""

    def __init__(self, encoder: nn.Module, num_classes: int, widths: tuple[int, ...] = (96, 64, 32)) -> None:
        super().__init__()
        self.encoder = encoder
        skips = list(reversed(encoder.channels[:-1]))
        blocks, cin = [], encoder.channels[-1]
        for skip, width in zip(skips, widths):
            blocks.append(nn.Sequential(conv_bn_act(cin + skip, width), conv_bn_act(width, width)))
            cin = width
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Conv2d(cin, num_classes, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.encoder(x)
        y = feats[-1]
        for block, skip in zip(self.blocks, reversed(feats[:-1])):
            y = block(torch.cat([F.interpolate(y, scale_factor=2, mode="nearest"), skip], dim=1))
        return upsample_like(self.head(y), x)


class ASPP(nn.Module):
    """DeepLabV3's atrous spatial pyramid pooling: 1x1, three dilated 3x3 and an image-pooling branch."""

    def __init__(self, cin: int, width: int = 128, rates: tuple[int, ...] = (6, 12, 18)) -> None:
        super().__init__()
        self.branches = nn.ModuleList([conv_bn_act(cin, width, 1)] + [conv_bn_act(cin, width, 3, dilation=r) for r in rates])
        self.pool = conv_bn_act(cin, width, 1)
        self.project = conv_bn_act(width * (len(rates) + 2), width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = upsample_like(self.pool(F.adaptive_avg_pool2d(x, 1)), x)
        return self.project(torch.cat([b(x) for b in self.branches] + [pooled], dim=1))


class DeepLabV3(nn.Module):
    """torchvision's deeplabv3 head on an output-stride-16 encoder; ``plus`` adds DeepLabV3+'s
    decoder (the 1/4 features, reduced, concatenated with the upsampled ASPP output)."""

    def __init__(self, encoder: nn.Module, num_classes: int, plus: bool = False) -> None:
        super().__init__()
        self.encoder, self.plus = encoder, plus
        self.aspp = ASPP(encoder.channels[-1])
        if plus:
            self.low = conv_bn_act(encoder.channels[0], 48, 1)
            self.fuse = nn.Sequential(conv_bn_act(128 + 48, 128), conv_bn_act(128, 128))
        self.head = nn.Conv2d(128, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.encoder(x)
        y = self.aspp(feats[-1])
        if self.plus:
            y = self.fuse(torch.cat([upsample_like(y, feats[0]), self.low(feats[0])], dim=1))
        return upsample_like(self.head(y), x)


class LRASPP(nn.Module):
    """torchvision's lraspp_mobilenet_v3_large: a 1x1 branch gated by a pooled sigmoid, upsampled
    to 1/8 and added to a classifier of the 1/8 features."""

    def __init__(self, encoder: nn.Module, num_classes: int, width: int = 128) -> None:
        super().__init__()
        self.encoder = encoder
        low, high = encoder.channels[1], encoder.channels[-1]
        self.cbr = conv_bn_act(high, width, 1)
        self.scale = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(high, width, 1, bias=False), nn.Sigmoid())
        self.low_classifier = nn.Conv2d(low, num_classes, 1)
        self.high_classifier = nn.Conv2d(width, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.encoder(x)
        low, high = feats[1], feats[-1]
        y = upsample_like(self.cbr(high) * self.scale(high), low)
        return upsample_like(self.low_classifier(low) + self.high_classifier(y), x)


class PSPNet(nn.Module):
    """PSPNet's pyramid pooling (adaptive average pools to 1, 2, 3 and 6, each upsampled and
    concatenated) on the 1/8 features (smp's PSPNet uses the encoder up to stride 8)."""

    def __init__(self, encoder: nn.Module, num_classes: int, bins: tuple[int, ...] = (1, 2, 3, 6)) -> None:
        super().__init__()
        self.encoder, self.bins = encoder, bins
        cin = encoder.channels[1]
        self.stages = nn.ModuleList(conv_bn_act(cin, cin // 4, 1) for _ in bins)
        self.bottleneck = conv_bn_act(cin * 2, 64)
        self.head = nn.Conv2d(64, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.encoder(x)[1]
        pooled = [upsample_like(stage(F.adaptive_avg_pool2d(f, b)), f) for stage, b in zip(self.stages, self.bins)]
        return upsample_like(self.head(self.bottleneck(torch.cat([f, *pooled], dim=1))), x)


class Linknet(nn.Module):
    """smp's Linknet: decoder blocks of 1x1 reduce, transposed-conv x2, 1x1 expand, added to the skip."""

    def __init__(self, encoder: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.encoder = encoder
        chans = list(encoder.channels)
        blocks = []
        for cin, cout in zip(reversed(chans[1:]), reversed(chans[:-1])):
            blocks.append(nn.Sequential(conv_bn_act(cin, cin // 4, 1), nn.ConvTranspose2d(cin // 4, cin // 4, 4, 2, 1),
                                        nn.BatchNorm2d(cin // 4), nn.ReLU(), conv_bn_act(cin // 4, cout, 1)))
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Conv2d(chans[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.encoder(x)
        y = feats[-1]
        for block, skip in zip(self.blocks, reversed(feats[:-1])):
            y = block(y) + skip
        return upsample_like(self.head(y), x)


def fpn_mobilenetv2(num_classes: int = 19) -> nn.Module:
    return calibrated(FPN(MobileNetV2(), num_classes), 256)


def fpn_cat_mobilenetv3(num_classes: int = 19) -> nn.Module:
    return calibrated(FPN(MobileNetV3Large(), num_classes, merge="cat"), 256)


def unet_mobilenetv2(num_classes: int = 19) -> nn.Module:
    return calibrated(UNet(MobileNetV2(), num_classes), 256)


def unet_resnet18(num_classes: int = 19) -> nn.Module:
    return calibrated(UNet(ResNet18(), num_classes), 256)


def deeplabv3_mobilenetv2(num_classes: int = 19) -> nn.Module:
    return calibrated(DeepLabV3(MobileNetV2(dilate_last=True), num_classes), 256)


def deeplabv3plus_mobilenetv2(num_classes: int = 19) -> nn.Module:
    return calibrated(DeepLabV3(MobileNetV2(dilate_last=True), num_classes, plus=True), 256)


def lraspp_mobilenetv3(num_classes: int = 19) -> nn.Module:
    return calibrated(LRASPP(MobileNetV3Large(), num_classes), 256)


def pspnet_mobilenetv2(num_classes: int = 19) -> nn.Module:
    return calibrated(PSPNet(MobileNetV2(), num_classes), 256)


def linknet_resnet18(num_classes: int = 19) -> nn.Module:
    return calibrated(Linknet(ResNet18(), num_classes), 256)
