"""Building blocks the mobile architectures of the zoo share, as their libraries write them."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def conv_bn_act(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, dilation: int = 1,
                act: type[nn.Module] | None = nn.ReLU) -> nn.Sequential:
    """Conv (no bias) + BatchNorm (+ activation), the unit of torchvision's and timm's nets."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, stride, dilation * (k // 2), dilation=dilation, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation: global average pool, bottleneck 1x1 convs, a gate on the channels."""

    def __init__(self, channels: int, squeezed: int, gate: type[nn.Module] = nn.Hardsigmoid,
                 act: type[nn.Module] = nn.ReLU) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeezed, 1)
        self.act = act()
        self.expand = nn.Conv2d(squeezed, channels, 1)
        self.gate = gate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.expand(self.act(self.reduce(F.adaptive_avg_pool2d(x, 1)))))


class InvertedResidual(nn.Module):
    """MobileNetV2/V3's and EfficientNet's block: expand 1x1, depth-wise kxk, (SE), project 1x1."""

    def __init__(self, cin: int, cout: int, stride: int, expand: float, k: int = 3, se: bool = False,
                 act: type[nn.Module] = nn.ReLU6, gate: type[nn.Module] = nn.Hardsigmoid, dilation: int = 1) -> None:
        super().__init__()
        hidden = int(round(cin * expand))
        layers: list[nn.Module] = [] if hidden == cin else [conv_bn_act(cin, hidden, 1, act=act)]
        layers.append(conv_bn_act(hidden, hidden, k, stride, groups=hidden, dilation=dilation, act=act))
        if se:
            layers.append(SqueezeExcite(hidden, max(8, hidden // 4), gate=gate))
        layers.append(conv_bn_act(hidden, cout, 1, act=None))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.residual else y


def init_like_torchvision(model: nn.Module) -> nn.Module:
    """The initialisation torchvision's and timm's constructors apply: Kaiming-normal convs
    (fan-out), unit BatchNorms, small linear layers. PyTorch's default initialisation shrinks
    activations at every layer, and deep nets then run on subnormal floats, which no trained
    model does (and which slows every float kernel alike, by an order of magnitude on x86)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)
    return model


def calibrated(model: nn.Module, side: int, batches: int = 2) -> nn.Module:
    """``model`` initialised as torchvision does, its BatchNorm statistics estimated on random
    images (``batches`` of 4 at ``side`` x ``side``), in eval mode.

    Untrained, in eval mode, BatchNorm's default statistics (mean 0, variance 1) normalise
    nothing, activations shrink layer by layer and deep nets end up computing on subnormal
    floats, as no trained model does. Estimated statistics keep every layer's output near unit
    scale, like a trained network's.
    """
    init_like_torchvision(model)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # a plain average over the calibration batches
    model.train()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _ in range(batches):
            model(torch.randn(4, 3, side, side, generator=generator))
    return model.eval()


def upsample_like(x: torch.Tensor, like: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """``x`` resized to ``like``'s height and width."""
    if mode == "nearest":
        return F.interpolate(x, size=like.shape[-2:], mode="nearest")
    return F.interpolate(x, size=like.shape[-2:], mode=mode, align_corners=False)
