"""Small conv nets, one per coupling case, and the masked-vs-sliced exactness check."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from edgeprune.pruning.coupling import ChannelGraph
from edgeprune.pruning.models.common import InvertedResidual
from edgeprune.pruning.slicing import slice_model

TOLERANCE = 1e-5


def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, nn.ReLU()) if act else nn.Sequential(*layers)


class Chain(nn.Module):
    """conv -> BN -> ReLU -> conv -> BN -> ReLU6 -> classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 12, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(12)
        self.act2 = nn.ReLU6()
        self.head = nn.Conv2d(12, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.act2(self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))))


class DepthwiseSeparable(nn.Module):
    """conv-BN-ReLU -> depth-wise 3x3-BN-ReLU -> pointwise-BN-ReLU -> classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = conv_bn(3, 8)
        self.dw = conv_bn(8, 8, groups=8)
        self.pw = conv_bn(8, 16, k=1)
        self.head = nn.Conv2d(16, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pw(self.dw(self.stem(x))))


class Inverted(nn.Module):
    """MobileNetV2 inverted residuals: one with the identity shortcut, one without."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = conv_bn(3, 16, stride=2)
        self.block1 = InvertedResidual(16, 16, 1, 4)
        self.block2 = InvertedResidual(16, 24, 2, 3)
        self.head = nn.Conv2d(24, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block2(self.block1(self.stem(x))))


class Concat(nn.Module):
    """Two branches concatenated in both orders, each concat feeding a conv; the two are added."""

    def __init__(self) -> None:
        super().__init__()
        self.a = conv_bn(3, 8)
        self.b = nn.Sequential(nn.MaxPool2d(3, 1, 1), conv_bn(3, 12))
        self.fuse_ab = conv_bn(20, 16, k=1)
        self.fuse_ba = conv_bn(20, 16, k=1)
        self.head = nn.Conv2d(16, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.a(x), self.b(x)
        return self.head(self.fuse_ab(torch.cat([a, b], dim=1)) + self.fuse_ba(torch.cat([b, a], dim=1)))


class Split(nn.Module):
    """A channel chunk into two convs, and a spatial split (which keeps channels prunable)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = conv_bn(3, 16)
        self.conv_a = conv_bn(8, 8)
        self.conv_b = conv_bn(8, 8)
        self.head = nn.Conv2d(16, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.stem(x).chunk(2, dim=1)
        y = torch.cat([self.conv_a(a), self.conv_b(b)], dim=1)
        top, bottom = y.split(y.shape[2] // 2, dim=2)
        return self.head(torch.cat([bottom, top], dim=2))


class Grouped(nn.Module):
    """conv -> grouped conv (``groups``) -> conv -> classifier."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.conv1 = conv_bn(3, 16)
        self.grouped = conv_bn(16, 16, groups=groups)
        self.conv3 = conv_bn(16, 8)
        self.head = nn.Conv2d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv3(self.grouped(self.conv1(x))))


class Ghost(nn.Module):
    """GhostNet's module: a primary conv, a cheap depth-wise conv of its output, both concatenated
    and sliced to the output width (here the whole concat, as in ghostnet_100), then a consumer."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = conv_bn(3, 8)
        self.primary = conv_bn(8, 12, k=1)
        self.cheap = conv_bn(12, 12, groups=12)
        self.head = nn.Conv2d(24, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        primary = self.primary(self.stem(x))
        out = torch.cat([primary, self.cheap(primary)], dim=1)
        return self.head(out[:, :24])


class Injection(nn.Module):
    """TopFormer-style semantic injection: ``local * h_sigmoid(act(global)) + embed(global)``."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = conv_bn(3, 8)
        self.local_embedding = conv_bn(8, 16, k=1, act=False)
        self.global_act = conv_bn(8, 16, k=1, act=False)
        self.global_embedding = conv_bn(8, 16, k=1, act=False)
        self.gate = nn.Hardsigmoid()
        self.fuse = conv_bn(16, 16, groups=16)
        self.head = nn.Conv2d(16, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        local = self.stem(x)
        coarse = F.avg_pool2d(local, 4)
        size = local.shape[-2:]
        gate = F.interpolate(self.gate(self.global_act(coarse)), size=size, mode="bilinear", align_corners=False)
        semantic = F.interpolate(self.global_embedding(coarse), size=size, mode="bilinear", align_corners=False)
        return self.head(self.fuse(self.local_embedding(local) * gate + semantic))


class NonzeroPaths(nn.Module):
    """Pruned channels that would reach a conv nonzero: after a sigmoid, after adding a parameter.

    The squeeze-excite gate (``x * sigmoid(...)``) is fine: a zero times anything is zero.
    """

    def __init__(self) -> None:
        super().__init__()
        self.sig = conv_bn(3, 8, act=False)
        self.shifted = conv_bn(3, 8, act=False)
        self.offset = nn.Parameter(torch.full((1, 8, 1, 1), 0.5))
        self.se_in = conv_bn(16, 16)
        self.se_reduce = nn.Conv2d(16, 4, 1)
        self.se_expand = nn.Conv2d(4, 16, 1)
        self.head = nn.Conv2d(16, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat([torch.sigmoid(self.sig(x)), self.shifted(x) + self.offset], dim=1)
        y = self.se_in(y)
        gate = torch.sigmoid(self.se_expand(F.relu(self.se_reduce(y.mean((2, 3), keepdim=True)))))
        return self.head(y * gate)


class UserNet(nn.Module):
    """A user's classifier: residual stages, a concat, pooling, flatten and a linear layer."""

    def __init__(self, num_classes: int = 5) -> None:
        super().__init__()
        self.stem = conv_bn(3, 16, stride=2)
        self.res1 = nn.Sequential(conv_bn(16, 24), conv_bn(24, 16, act=False))
        self.res2 = nn.Sequential(conv_bn(16, 32), conv_bn(32, 16, act=False))
        self.side = nn.Sequential(nn.AvgPool2d(2), conv_bn(16, 8, k=1))
        self.down = conv_bn(16, 24, stride=2)
        self.mix = conv_bn(32, 32, k=1)
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = F.relu(x + self.res1(x))
        x = F.relu(x + self.res2(x))
        x = self.mix(torch.cat([self.down(x), self.side(x)], dim=1))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class Tokens(nn.Module):
    """Conv stem, then a token MLP (linears over ``[B, N, C]``) with a LayerNorm, back to a conv."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = conv_bn(3, 16, stride=4)
        self.norm = nn.LayerNorm(16)
        self.fc1 = nn.Linear(16, 32)
        self.fc2 = nn.Linear(32, 16)
        self.head = nn.Conv2d(16, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        b, c, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)
        tokens = tokens + self.fc2(F.gelu(self.fc1(self.norm(tokens))))
        return self.head(tokens.transpose(1, 2).reshape(b, c, h, w))


class Unsliceable(nn.Module):
    """A GroupNorm, a transposed conv, a module called twice and a channel slice of traced size."""

    def __init__(self) -> None:
        super().__init__()
        self.a = conv_bn(3, 16)
        self.norm = nn.GroupNorm(4, 16)
        self.up = nn.ConvTranspose2d(16, 8, 2, 2)
        self.shared = conv_bn(8, 8)
        self.b = conv_bn(4, 6)
        self.head = nn.Conv2d(6, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.shared(self.shared(self.up(self.norm(self.a(x)))))
        return self.head(self.b(y[:, : y.shape[1] // 2]))


class Untraceable(nn.Module):
    """Data-dependent control flow: ``torch.fx`` cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = conv_bn(3, 8)
        self.conv2 = conv_bn(8, 8)
        self.conv3 = conv_bn(8, 12)
        self.head = nn.Conv2d(12, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(x)
        if y.sum() > 0:
            y = y + self.conv2(y)
        return self.head(self.conv3(y))


# --------------------------------------------------------------------------- checks


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random BN statistics and affine parameters (so BN(0) != 0) and conv biases, moderate scales."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=gen) * 0.2)
                module.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
                module.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                module.bias.copy_(torch.randn(n, generator=gen) * 0.3)
            elif isinstance(module, (nn.Conv2d, nn.Linear)) and module.bias is not None:
                module.bias.copy_(torch.randn(module.bias.shape, generator=gen) * 0.1)
    return model.eval()


def random_keep(graph: ChannelGraph, seed: int = 0, fraction: float = 0.5) -> dict[int, torch.Tensor]:
    """A random kept subset (at least one channel) of every prunable group."""
    gen = torch.Generator().manual_seed(seed)
    keep = {}
    for group in graph.groups:
        if group.prunable:
            count = max(1, round(group.size * fraction))
            keep[group.index] = torch.randperm(group.size, generator=gen)[:count].sort().values
    return keep


@contextmanager
def masked(model: nn.Module, graph: ChannelGraph, keep: dict[int, torch.Tensor]) -> Iterator[None]:
    """Multiply every mask point's output by its group's 0/1 mask, as the pruning masks do."""
    modules = dict(model.named_modules())
    handles = []
    for group in graph.groups:
        if group.index not in keep:
            continue
        mask = torch.zeros(group.size)
        mask[keep[group.index]] = 1.0
        for name in group.mask_points:
            dim = -1 if isinstance(modules[name], nn.Linear) else 1
            handles.append(modules[name].register_forward_hook(_multiply(mask, dim)))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _multiply(mask: torch.Tensor, dim: int):
    def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        shape = [1] * output.dim()
        shape[dim] = mask.numel()
        return output * mask.view(shape)

    return hook


def slice_error(model: nn.Module, graph: ChannelGraph, keep: dict[int, torch.Tensor], x: torch.Tensor) -> float:
    """Max abs difference between the masked model and its slice (eval mode).

    Also checks the masks change the output, so that a small difference means something.
    """
    model.eval()
    sliced = slice_model(model, graph, keep).eval()
    with torch.no_grad():
        with masked(model, graph, keep):
            want = model(x)
        got = sliced(x)
        assert not torch.allclose(model(x), want), "the masks do not change the output"
    assert got.shape == want.shape
    return float((want - got).abs().max())


def conv_linear_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Conv and linear MACs as ``FlopCounterMode`` counts them (attention matmuls excluded)."""
    ops = {torch.ops.aten.convolution, torch.ops.aten.addmm, torch.ops.aten.mm}
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    flops = counter.get_flop_counts()["Global"]
    return sum(count for op, count in flops.items() if op in ops) // 2


def site_macs(graph: ChannelGraph, keep: dict[int, torch.Tensor] | None = None) -> int:
    """The ``ConvSite`` MACs formula at the kept channel counts (full width by default)."""
    counts = {g: len(k) for g, k in (keep or {}).items()}

    def kept(group: int | None, size: int) -> int:
        return counts.get(group, size) if group is not None else size

    total = 0
    for site in graph.sites:
        out = kept(site.out_group, site.out_channels)
        if site.depthwise:
            total += site.macs_per_pair * out
        else:
            total += site.macs_per_pair * out * sum(kept(g, n) for g, n in site.in_parts) // site.groups
    return total
