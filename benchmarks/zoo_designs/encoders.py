"""Encoders and classifiers after torchvision's and timm's designs, returning features at strides 4-32."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from benchmarks.zoo_designs.blocks import InvertedResidual, calibrated, conv_bn_act


class TappedSequence(nn.Module):
    """A sequence of ``features`` whose outputs at the indices ``taps`` are the multi-scale features."""

    features: nn.Sequential
    taps: list[int]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                out.append(x)
        return out


class MobileNetV2(TappedSequence):
    """torchvision's mobilenet_v2 (width 1.0); ``dilate_last`` gives DeepLab's output stride 16."""

    SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
    channels = (24, 32, 96, 320)

    def __init__(self, dilate_last: bool = False) -> None:
        super().__init__()
        layers, cin, self.taps = [conv_bn_act(3, 32, 3, 2, act=nn.ReLU6)], 32, []
        for t, c, n, s in self.SETTINGS:
            for i in range(n):
                stride, dilation = (s if i == 0 else 1), 1
                if dilate_last and c in (160, 320):
                    stride, dilation = 1, 2
                layers.append(InvertedResidual(cin, c, stride, t, dilation=dilation))
                cin = c
            if c in (24, 32, 96, 320):
                self.taps.append(len(layers) - 1)
        self.features = nn.Sequential(*layers)



class MobileNetV3Large(TappedSequence):
    """torchvision's mobilenet_v3_large: hard-swish, squeeze-excite with hard-sigmoid gates, 5x5 depth-wise."""

    SETTINGS = (  # k, expand, out, se, act, stride
        (3, 16, 16, False, "re", 1), (3, 64, 24, False, "re", 2), (3, 72, 24, False, "re", 1),
        (5, 72, 40, True, "re", 2), (5, 120, 40, True, "re", 1), (5, 120, 40, True, "re", 1),
        (3, 240, 80, False, "hs", 2), (3, 200, 80, False, "hs", 1), (3, 184, 80, False, "hs", 1),
        (3, 184, 80, False, "hs", 1), (3, 480, 112, True, "hs", 1), (3, 672, 112, True, "hs", 1),
        (5, 672, 160, True, "hs", 2), (5, 960, 160, True, "hs", 1), (5, 960, 160, True, "hs", 1),
    )
    channels = (24, 40, 112, 960)

    def __init__(self) -> None:
        super().__init__()
        layers, cin, self.taps = [conv_bn_act(3, 16, 3, 2, act=nn.Hardswish)], 16, []
        for k, hidden, cout, se, act, stride in self.SETTINGS:
            if stride == 2 and cin != 16:
                self.taps.append(len(layers) - 1)
            layers.append(InvertedResidual(cin, cout, stride, hidden / cin, k, se,
                                           act=nn.Hardswish if act == "hs" else nn.ReLU))
            cin = cout
        layers.append(conv_bn_act(cin, 960, 1, act=nn.Hardswish))
        self.taps.append(len(layers) - 1)
        self.features = nn.Sequential(*layers)



class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn_act(cin, cout, 3, stride), conv_bn_act(cout, cout, 3, act=None))
        self.down = conv_bn_act(cin, cout, 1, stride, act=None) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.down(x))


class StagedEncoder(nn.Module):
    """A stem, then stages whose outputs are the features at strides 4-32."""

    stem: nn.Module
    stages: nn.ModuleList

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x, out = self.stem(x), []
        for stage in self.stages:
            x = stage(x)
            out.append(x)
        return out


class ResNet18(StagedEncoder):
    """torchvision's resnet18: 7x7 stem, max pool, basic blocks."""

    channels = (64, 128, 256, 512)

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(conv_bn_act(3, 64, 7, 2), nn.MaxPool2d(3, 2, 1))
        stages, cin = [], 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            stages.append(nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)))
            cin = cout
        self.stages = nn.ModuleList(stages)


class EfficientNetB0(TappedSequence):
    """timm's efficientnet_b0: MBConv blocks with SiLU and sigmoid-gated squeeze-excite."""

    SETTINGS = ((1, 16, 1, 1, 3), (6, 24, 2, 2, 3), (6, 40, 2, 2, 5), (6, 80, 3, 2, 3), (6, 112, 3, 1, 5),
                (6, 192, 4, 2, 5), (6, 320, 1, 1, 3))
    channels = (24, 40, 112, 320)

    def __init__(self) -> None:
        super().__init__()
        layers, cin, self.taps = [conv_bn_act(3, 32, 3, 2, act=nn.SiLU)], 32, []
        for t, c, n, s, k in self.SETTINGS:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t, k, se=True, act=nn.SiLU, gate=nn.Sigmoid))
                cin = c
            if c in self.channels:
                self.taps.append(len(layers) - 1)
        self.features = nn.Sequential(*layers)



def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleUnit(nn.Module):
    """ShuffleNetV2's unit: split channels (stride 1) or two branches (stride 2), concat, shuffle."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.stride, half = stride, cout // 2
        side = cin if stride == 2 else half
        if stride == 2:
            self.left = nn.Sequential(conv_bn_act(cin, cin, 3, 2, groups=cin, act=None), conv_bn_act(cin, half, 1))
        self.right = nn.Sequential(conv_bn_act(side, half, 1), conv_bn_act(half, half, 3, stride, groups=half, act=None),
                                   conv_bn_act(half, half, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            a, b = x.chunk(2, dim=1)
            y = torch.cat([a, self.right(b)], dim=1)
        else:
            y = torch.cat([self.left(x), self.right(x)], dim=1)
        return channel_shuffle(y, 2)


class ShuffleNetV2(nn.Module):
    """torchvision's shufflenet_v2_x1_0."""

    channels = (24, 116, 232, 464)

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(conv_bn_act(3, 24, 3, 2), nn.MaxPool2d(3, 2, 1))
        stages, cin = [], 24
        for cout, repeats in ((116, 4), (232, 8), (464, 4)):
            stages.append(nn.Sequential(ShuffleUnit(cin, cout, 2), *[ShuffleUnit(cout, cout, 1) for _ in range(repeats - 1)]))
            cin = cout
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        out = [x]
        for stage in self.stages:
            x = stage(x)
            out.append(x)
        return out


class Classifier(nn.Module):
    """An encoder's last features, global average pool, a linear layer."""

    def __init__(self, encoder: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.channels[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(F.adaptive_avg_pool2d(self.encoder(x)[-1], 1), 1))


def mobilenetv2(num_classes: int = 1000) -> nn.Module:
    return calibrated(Classifier(MobileNetV2(), num_classes), 224)


def mobilenetv3_large(num_classes: int = 1000) -> nn.Module:
    return calibrated(Classifier(MobileNetV3Large(), num_classes), 224)


def resnet18(num_classes: int = 1000) -> nn.Module:
    return calibrated(Classifier(ResNet18(), num_classes), 224)


def efficientnet_b0(num_classes: int = 1000) -> nn.Module:
    return calibrated(Classifier(EfficientNetB0(), num_classes), 224)


def shufflenetv2(num_classes: int = 1000) -> nn.Module:
    return calibrated(Classifier(ShuffleNetV2(), num_classes), 224)
