"""More encoders and classifiers, each bringing op patterns the first ones lack: grouped convs
(RegNetX), ghost modules' concat of a conv and its cheap depth-wise copy (GhostNet), fire modules
after ceil-mode pooling (SqueezeNet), channels-last LayerNorm, GELU and layer scale (ConvNeXt),
and efficient self-attention with a strided reduction, Mix-FFN and LayerNorms (SegFormer's MiT)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from benchmarks.zoo_designs.blocks import calibrated, conv_bn_act
from benchmarks.zoo_designs.encoders import Classifier, StagedEncoder


class RegNetBlock(nn.Module):
    """RegNetX's bottleneck (ratio 1): 1x1, grouped 3x3 (group width 16), 1x1, residual."""

    def __init__(self, cin: int, cout: int, stride: int, group_width: int = 16) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn_act(cin, cout, 1), conv_bn_act(cout, cout, 3, stride, groups=cout // group_width),
                                  conv_bn_act(cout, cout, 1, act=None))
        self.down = conv_bn_act(cin, cout, 1, stride, act=None) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.down(x))


class RegNetX400MF(StagedEncoder):
    """torchvision's regnet_x_400mf."""

    channels = (32, 64, 160, 400)

    def __init__(self) -> None:
        super().__init__()
        self.stem = conv_bn_act(3, 32, 3, 2)
        stages, cin = [], 32
        for cout, depth in zip(self.channels, (1, 2, 7, 12)):
            stages.append(nn.Sequential(RegNetBlock(cin, cout, 2), *[RegNetBlock(cout, cout, 1) for _ in range(depth - 1)]))
            cin = cout
        self.stages = nn.ModuleList(stages)


class GhostModule(nn.Module):
    """Half the channels from a 1x1 conv, the other half a depth-wise 3x3 of those, concatenated."""

    def __init__(self, cin: int, cout: int, act: bool = True) -> None:
        super().__init__()
        primary = (cout + 1) // 2
        activation = nn.ReLU if act else None
        self.primary = conv_bn_act(cin, primary, 1, act=activation)
        self.cheap = conv_bn_act(primary, primary, 3, groups=primary, act=activation)
        self.cout = cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.primary(x)
        return torch.cat([y, self.cheap(y)], dim=1)[:, : self.cout]


class GhostBottleneck(nn.Module):
    def __init__(self, cin: int, hidden: int, cout: int, stride: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [GhostModule(cin, hidden)]
        if stride > 1:
            layers.append(conv_bn_act(hidden, hidden, 3, stride, groups=hidden, act=None))
        layers.append(GhostModule(hidden, cout, act=False))
        self.body = nn.Sequential(*layers)
        downsample = [conv_bn_act(cin, cin, 3, stride, groups=cin, act=None), conv_bn_act(cin, cout, 1, act=None)]
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(*downsample)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


class GhostNet(StagedEncoder):
    """GhostNet 1.0 (Han et al.; timm's ghostnet_100), without its squeeze-excite."""

    SETTINGS = (  # per stage: (hidden, out, stride) of each bottleneck
        ((16, 16, 1), (48, 24, 2), (72, 24, 1)),
        ((72, 40, 2), (120, 40, 1)),
        ((240, 80, 2), (200, 80, 1), (184, 80, 1), (480, 112, 1), (672, 112, 1)),
        ((672, 160, 2), (960, 160, 1), (960, 160, 1)),
    )
    channels = (24, 40, 112, 160)

    def __init__(self) -> None:
        super().__init__()
        self.stem = conv_bn_act(3, 16, 3, 2)
        stages, cin = [], 16
        for stage in self.SETTINGS:
            blocks = []
            for hidden, cout, stride in stage:
                blocks.append(GhostBottleneck(cin, hidden, cout, stride))
                cin = cout
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)


class Fire(nn.Module):
    def __init__(self, cin: int, squeeze: int, expand: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(cin, squeeze, 1)
        self.expand1 = nn.Conv2d(squeeze, expand, 1)
        self.expand3 = nn.Conv2d(squeeze, expand, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = F.relu(self.squeeze(x))
        return torch.cat([F.relu(self.expand1(s)), F.relu(self.expand3(s))], dim=1)


class SqueezeNet11(nn.Module):
    """torchvision's squeezenet1_1: fire modules, ceil-mode max pools, a conv classifier."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)  # noqa: E731
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 3, 2), nn.ReLU(), pool(), Fire(64, 16, 64), Fire(128, 16, 64), pool(),
            Fire(128, 32, 128), Fire(256, 32, 128), pool(), Fire(256, 48, 192), Fire(384, 48, 192),
            Fire(384, 64, 256), Fire(512, 64, 256),
        )
        self.classifier = nn.Conv2d(512, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(F.adaptive_avg_pool2d(F.relu(self.classifier(self.features(x))), 1), 1)


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW map (ConvNeXt's and timm's form)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ConvNeXtBlock(nn.Module):
    """7x7 depth-wise conv, then channels-last LayerNorm, 4x MLP with GELU, layer scale, residual."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dw = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.fc1, self.fc2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), 0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc2(F.gelu(self.fc1(self.norm(self.dw(x).permute(0, 2, 3, 1))))) * self.gamma
        return x + y.permute(0, 3, 1, 2)


class ConvNeXtAtto(StagedEncoder):
    """timm's convnext_atto: a 4x4 patchify stem, LayerNorm + 2x2 strided downsampling."""

    channels = (40, 80, 160, 320)

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 40, 4, 4), LayerNorm2d(40))
        stages, cin = [], 40
        for i, (dim, depth) in enumerate(zip(self.channels, (2, 2, 6, 2))):
            down = [] if i == 0 else [LayerNorm2d(cin), nn.Conv2d(cin, dim, 2, 2)]
            stages.append(nn.Sequential(*down, *[ConvNeXtBlock(dim) for _ in range(depth)]))
            cin = dim
        self.stages = nn.ModuleList(stages)


class EfficientAttention(nn.Module):
    """SegFormer's self-attention: keys and values from a map reduced ``sr`` times by a strided conv."""

    def __init__(self, dim: int, heads: int, sr: int) -> None:
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.q, self.kv, self.proj = nn.Linear(dim, dim), nn.Linear(dim, 2 * dim), nn.Linear(dim, dim)
        self.reduce = nn.Sequential(nn.Conv2d(dim, dim, sr, sr), LayerNorm2d(dim)) if sr > 1 else nn.Identity()

    def forward(self, tokens: torch.Tensor, h: int, w: int) -> torch.Tensor:
        b, n, c = tokens.shape
        q = self.q(tokens).reshape(b, n, self.heads, c // self.heads).transpose(1, 2)
        reduced = self.reduce(tokens.transpose(1, 2).reshape(b, c, h, w)).flatten(2).transpose(1, 2)
        k, v = self.kv(reduced).reshape(b, -1, 2, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        attention = (q @ k.transpose(-2, -1) * self.scale).softmax(dim=-1)
        return self.proj((attention @ v).transpose(1, 2).reshape(b, n, c))


class MiTBlock(nn.Module):
    """Pre-norm attention and Mix-FFN (linear, depth-wise 3x3, GELU, linear), both residual."""

    def __init__(self, dim: int, heads: int, sr: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attention = EfficientAttention(dim, heads, sr)
        self.fc1, self.fc2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)
        self.dw = nn.Conv2d(4 * dim, 4 * dim, 3, padding=1, groups=4 * dim)

    def forward(self, tokens: torch.Tensor, h: int, w: int) -> torch.Tensor:
        tokens = tokens + self.attention(self.norm1(tokens), h, w)
        y = self.fc1(self.norm2(tokens))
        b, n, c = y.shape
        y = self.dw(y.transpose(1, 2).reshape(b, c, h, w)).flatten(2).transpose(1, 2)
        return tokens + self.fc2(F.gelu(y))


class MiTB0(nn.Module):
    """SegFormer's MiT-B0 encoder: overlapping patch embeddings, 2 blocks per stage."""

    channels = (32, 64, 160, 256)

    def __init__(self) -> None:
        super().__init__()
        self.embeds, self.stages, self.norms = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        cin = 3
        for dim, heads, sr, (k, s) in zip(self.channels, (1, 2, 5, 8), (8, 4, 2, 1), ((7, 4), (3, 2), (3, 2), (3, 2))):
            self.embeds.append(nn.Sequential(nn.Conv2d(cin, dim, k, s, k // 2), LayerNorm2d(dim)))
            self.stages.append(nn.ModuleList([MiTBlock(dim, heads, sr) for _ in range(2)]))
            self.norms.append(nn.LayerNorm(dim))
            cin = dim

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for embed, blocks, norm in zip(self.embeds, self.stages, self.norms):
            x = embed(x)
            b, c, h, w = x.shape
            tokens = x.flatten(2).transpose(1, 2)
            for block in blocks:
                tokens = block(tokens, h, w)
            x = norm(tokens).transpose(1, 2).reshape(b, c, h, w)
            out.append(x)
        return out


def regnetx_400mf(num_classes: int = 1000) -> nn.Module:
    return calibrated(Classifier(RegNetX400MF(), num_classes), 224)


def ghostnet(num_classes: int = 1000) -> nn.Module:
    return calibrated(Classifier(GhostNet(), num_classes), 224)


def squeezenet(num_classes: int = 1000) -> nn.Module:
    return calibrated(SqueezeNet11(num_classes), 224)


def convnext_atto(num_classes: int = 1000) -> nn.Module:
    return calibrated(Classifier(ConvNeXtAtto(), num_classes), 224)
