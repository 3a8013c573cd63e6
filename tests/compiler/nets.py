"""A small user segmentation model made of every op the compiler schedules.

Loaded by the checkpoint machinery as ``tests.compiler.nets:build``: strided 3x3 stem with
hardswish, MobileNetV2 blocks (ReLU6, depthwise 3x3 and 5x5 stride 2, residual add), a
grouped dilated conv with an h_sigmoid gate, single-head attention (1x1 convs as linear,
matmul, softmax), average pooling, bilinear resize, concat, and a classifier with bias.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def conv_bn(cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1, dilation: int = 1, act=None) -> nn.Sequential:
    layers = [
        nn.Conv2d(cin, cout, k, stride, padding=dilation * (k // 2), dilation=dilation, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int, k: int, act) -> None:
        super().__init__()
        hidden = cin * expand
        self.conv = nn.Sequential(
            conv_bn(cin, hidden, act=act),
            conv_bn(hidden, hidden, k, stride, groups=hidden, act=act),
            conv_bn(hidden, cout),
        )
        self.residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


class Attention(nn.Module):
    def __init__(self, dim: int, key_dim: int) -> None:
        super().__init__()
        self.q = conv_bn(dim, key_dim)
        self.k = conv_bn(dim, key_dim)
        self.v = conv_bn(dim, dim)
        self.proj = nn.Sequential(nn.ReLU6(), conv_bn(dim, dim))
        self.scale = key_dim ** -0.5

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        q = self.q(x).flatten(2).transpose(1, 2)
        k = self.k(x).flatten(2)
        v = self.v(x).flatten(2).transpose(1, 2)
        attn = torch.softmax(torch.matmul(q, k) * self.scale, dim=-1)
        out = torch.matmul(attn, v).transpose(1, 2).reshape(b, c, h, w)
        return x + self.proj(out)


class TinySeg(nn.Module):
    def __init__(self, num_classes: int = 5) -> None:
        super().__init__()
        self.stem = conv_bn(3, 16, 3, stride=2, act=nn.Hardswish)
        self.block1 = InvertedResidual(16, 16, 1, 3, 3, nn.ReLU6)
        self.block2 = InvertedResidual(16, 24, 2, 4, 5, nn.ReLU)
        self.grouped = conv_bn(24, 24, 3, groups=4, dilation=2)
        self.gate = conv_bn(24, 24, act=nn.Hardsigmoid)
        self.pool = nn.AvgPool2d(2, ceil_mode=True)
        self.attn = Attention(24, 8)
        self.cls = nn.Conv2d(48, num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.block1(self.stem(x))
        x = self.block2(x)
        x = self.grouped(x) * self.gate(x)
        g = self.attn(self.pool(x))
        g = F.interpolate(g, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.cls(torch.cat([x, g], dim=1))


def build(num_classes: int = 5) -> nn.Module:
    return TinySeg(num_classes)
