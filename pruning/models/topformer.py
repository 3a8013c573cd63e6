"""TopFormer for semantic segmentation, in plain PyTorch.

Zhang, W., Huang, Z., Luo, G., Chen, T., Wang, X., Liu, W., Yu, G., Shen, C.: "TopFormer: Token
Pyramid Transformer for Mobile Semantic Segmentation", CVPR 2022. Follows the official code
(hustvl/TopFormer: ``mmseg/models/backbones/topformer.py``, ``decode_heads/simple_head.py``
and ``local_configs/topformer/topformer_{tiny,small,base}.py``):

token pyramid (MobileNetV2 blocks) -> pool every pyramid level to 1/64 of the input -> 4
transformer blocks over the concatenated tokens -> split back per level -> semantic injection
into the local tokens at 1/8, 1/16 and 1/32 -> SimpleHead. The logits come out at 1/8 of the
input resolution; the caller upsamples. Activations as in the official code: ReLU6 in the
transformer, ReLU in the token pyramid and in the head's ``linear_fuse``.

Differences from the official code, none of which changes parameters or MACs:

* Token pooling uses ``AvgPool2d`` with a static kernel (``64 / level stride``, ceil mode)
  instead of ``adaptive_avg_pool2d``: identical when the input sides are multiples of 64, and it
  exports to ONNX at any size.
* No drop path (the official configs train with ``drop_path_rate=0.1``).
* All BN weights start at 1 (the official ``init_weights`` also overrides the attention
  projection's zero-init BN to 1).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from edgeprune.pruning.models.common import ConvBNAct, InvertedResidual, init_classifier, init_weights

# One token-pyramid block: (kernel size, expand ratio, output channels, stride).
BlockCfg = tuple[int, int, int, int]


@dataclass(frozen=True)
class TopFormerConfig:
    """A TopFormer variant; the fields mirror the official ``model_cfgs``."""

    blocks: tuple[BlockCfg, ...]
    embed_out_indices: tuple[int, ...]  # blocks whose outputs are the pyramid levels
    num_heads: int
    head_channels: int  # width of the injection modules and of the SimpleHead
    head_depthwise: bool  # SimpleHead's ``is_dw``: depthwise linear_fuse (Tiny only)
    num_classes: int = 150
    stem_channels: int = 16
    depth: int = 4
    key_dim: int = 16
    attn_ratio: int = 2
    mlp_ratio: int = 2
    c2t_stride: int = 2
    decode_out_indices: tuple[int, ...] = (1, 2, 3)
    dropout: float = 0.1

    @property
    def level_channels(self) -> tuple[int, ...]:
        return tuple(self.blocks[i][2] for i in self.embed_out_indices)


# Kernel sizes, expand ratios and strides of the official Small/Base pyramids; Tiny uses the
# first nine blocks.
_KERNELS = (3, 3, 3, 5, 5, 3, 3, 5, 5, 3)
_EXPAND = (1, 4, 3, 3, 3, 3, 3, 6, 6, 6)
_STRIDES = (1, 2, 1, 2, 1, 2, 1, 2, 1, 1)


def _blocks(widths: tuple[int, ...], expand: tuple[int, ...] = _EXPAND) -> tuple[BlockCfg, ...]:
    """One block per width (zip stops at the last one), with the official kernels and strides."""
    return tuple(zip(_KERNELS, expand, widths, _STRIDES))


TINY = TopFormerConfig(
    blocks=_blocks((16, 16, 16, 32, 32, 64, 64, 96, 96)),
    embed_out_indices=(2, 4, 6, 8),
    num_heads=4,
    head_channels=128,
    head_depthwise=True,
)
SMALL = TopFormerConfig(
    blocks=_blocks((16, 24, 24, 48, 48, 96, 96, 128, 128, 128)),
    embed_out_indices=(2, 4, 6, 9),
    num_heads=6,
    head_channels=192,
    head_depthwise=False,
)
BASE = TopFormerConfig(
    blocks=_blocks((16, 32, 32, 64, 64, 128, 128, 160, 160, 160)),
    embed_out_indices=(2, 4, 6, 9),
    num_heads=8,
    head_channels=256,
    head_depthwise=False,
)
# The unpruned starting point of the pruning paper: "the TopFormer architecture with a larger
# per-layer width compared with TopFormer-Base", 10.3M params and 4.1 GMACs at 512x512 (150
# classes). Base widened 1.5x everywhere (stem and token pyramid 16/32/64/128/160 ->
# 24/48/96/192/240, injection/head 256 -> 384, so 576 token channels) with the expand ratios of
# blocks 1-4 raised from 4/3/3/3 to 6/4/4/4; 8 heads as Base. Measured at 512x512, 150 classes:
# 10.41M params, 4.03 GMACs.
SUPERNET = TopFormerConfig(
    blocks=_blocks((24, 48, 48, 96, 96, 192, 192, 240, 240, 240), expand=(1, 6, 4, 4, 4, 3, 3, 6, 6, 6)),
    embed_out_indices=(2, 4, 6, 9),
    num_heads=8,
    head_channels=384,
    head_depthwise=False,
    stem_channels=24,
)


class TokenPyramid(nn.Module):
    """Stem conv and MobileNetV2 blocks; returns the outputs of ``out_indices`` (fine to coarse)."""

    def __init__(
        self, blocks: tuple[BlockCfg, ...], out_indices: tuple[int, ...], stem_channels: int
    ) -> None:
        super().__init__()
        # The official token pyramid uses ReLU (Topformer never passes its ReLU6 act_layer here).
        self.stem = ConvBNAct(3, stem_channels, 3, stride=2, act=nn.ReLU)
        layers = []
        in_channels = stem_channels
        for kernel, expand, out_channels, stride in blocks:
            layers.append(InvertedResidual(in_channels, out_channels, stride, expand, kernel, act=nn.ReLU))
            in_channels = out_channels
        self.layers = nn.ModuleList(layers)
        self.out_indices = tuple(out_indices)

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.stem(x)
        outs = []
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in self.out_indices:
                outs.append(x)
        return outs


class PyramidPoolAgg(nn.Module):
    """Average-pool every pyramid level to the token grid and concatenate channels.

    The grid is the coarsest level pooled by ``c2t_stride`` (1/64 of the input for all configs).
    """

    def __init__(self, level_strides: tuple[int, ...], c2t_stride: int) -> None:
        super().__init__()
        token_stride = level_strides[-1] * c2t_stride
        self.pools = nn.ModuleList(nn.AvgPool2d(token_stride // s, ceil_mode=True) for s in level_strides)

    def forward(self, levels: list[Tensor]) -> Tensor:
        return torch.cat([pool(x) for pool, x in zip(self.pools, levels)], dim=1)


class Attention(nn.Module):
    """Multi-head self-attention over the token grid with 1x1 Conv-BN projections."""

    def __init__(self, dim: int, key_dim: int, num_heads: int, attn_ratio: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.value_dim = attn_ratio * key_dim
        self.to_q = ConvBNAct(dim, key_dim * num_heads)
        self.to_k = ConvBNAct(dim, key_dim * num_heads)
        self.to_v = ConvBNAct(dim, self.value_dim * num_heads)
        self.proj = nn.Sequential(nn.ReLU6(), ConvBNAct(self.value_dim * num_heads, dim))

    def forward(self, x: Tensor) -> Tensor:
        b, h, w = x.shape[0], x.shape[2], x.shape[3]
        q = self.to_q(x).reshape(b, self.num_heads, self.key_dim, -1).transpose(2, 3)
        k = self.to_k(x).reshape(b, self.num_heads, self.key_dim, -1)
        v = self.to_v(x).reshape(b, self.num_heads, self.value_dim, -1).transpose(2, 3)
        # As the official code: no 1/sqrt(key_dim) scaling (it computes the scale, never uses it).
        attn = torch.matmul(q, k).softmax(dim=-1)
        out = torch.matmul(attn, v).transpose(2, 3).reshape(b, self.num_heads * self.value_dim, h, w)
        return self.proj(out)


class Mlp(nn.Module):
    """1x1 Conv-BN -> 3x3 depthwise conv (with bias) -> ReLU6 -> 1x1 Conv-BN."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = ConvBNAct(dim, hidden)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.act = nn.ReLU6()
        self.fc2 = ConvBNAct(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.dwconv(self.fc1(x))))


class TransformerBlock(nn.Module):
    """Residual attention then residual MLP; BN inside the projections, no LayerNorm."""

    def __init__(self, dim: int, key_dim: int, num_heads: int, attn_ratio: int, mlp_ratio: int) -> None:
        super().__init__()
        self.attn = Attention(dim, key_dim, num_heads, attn_ratio)
        self.mlp = Mlp(dim, dim * mlp_ratio)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(x)
        return x + self.mlp(x)


class InjectionMultiSum(nn.Module):
    """Semantic injection: ``local * h_sigmoid(act(global)) + embed(global)``, upsampled."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.local_embedding = ConvBNAct(in_channels, out_channels)
        self.global_embedding = ConvBNAct(in_channels, out_channels)
        self.global_act = ConvBNAct(in_channels, out_channels)
        self.act = nn.Hardsigmoid()  # h_sigmoid: ReLU6(x + 3) / 6

    def forward(self, local_tokens: Tensor, global_semantics: Tensor) -> Tensor:
        size = local_tokens.shape[-2:]
        local_feat = self.local_embedding(local_tokens)
        gate = F.interpolate(
            self.act(self.global_act(global_semantics)), size=size, mode="bilinear", align_corners=False
        )
        global_feat = F.interpolate(
            self.global_embedding(global_semantics), size=size, mode="bilinear", align_corners=False
        )
        return local_feat * gate + global_feat


class SimpleHead(nn.Module):
    """Sum the injected features at the finest resolution, fuse, classify (TopFormer's head)."""

    def __init__(self, channels: int, num_classes: int, depthwise: bool, dropout: float) -> None:
        super().__init__()
        self.linear_fuse = ConvBNAct(channels, channels, groups=channels if depthwise else 1, act=nn.ReLU)
        self.dropout = nn.Dropout2d(dropout)
        self.cls_seg = nn.Conv2d(channels, num_classes, 1)

    def forward(self, features: list[Tensor]) -> Tensor:
        out = features[0]
        for feat in features[1:]:
            out = out + F.interpolate(feat, size=out.shape[-2:], mode="bilinear", align_corners=False)
        return self.cls_seg(self.dropout(self.linear_fuse(out)))


class TopFormer(nn.Module):
    """TopFormer segmentation network; ``forward`` returns logits at 1/8 of the input size."""

    def __init__(self, config: TopFormerConfig) -> None:
        super().__init__()
        channels = config.level_channels
        dim = sum(channels)
        self.tpm = TokenPyramid(config.blocks, config.embed_out_indices, config.stem_channels)
        self.ppa = PyramidPoolAgg(_level_strides(config), config.c2t_stride)
        self.trans = nn.Sequential(
            *(
                TransformerBlock(dim, config.key_dim, config.num_heads, config.attn_ratio, config.mlp_ratio)
                for _ in range(config.depth)
            )
        )
        self.split_sizes = list(channels)
        self.decode_out_indices = tuple(config.decode_out_indices)
        self.sim = nn.ModuleList(
            InjectionMultiSum(channels[i], config.head_channels) for i in self.decode_out_indices
        )
        self.head = SimpleHead(
            config.head_channels, config.num_classes, config.head_depthwise, config.dropout
        )
        init_weights(self)
        init_classifier(self.head.cls_seg)
        self.edgeprune_config = {"architecture": "topformer", **asdict(config)}

    def forward(self, x: Tensor) -> Tensor:
        levels = self.tpm(x)
        tokens = self.trans(self.ppa(levels))
        semantics = tokens.split(self.split_sizes, dim=1)
        injected = [sim(levels[i], semantics[i]) for sim, i in zip(self.sim, self.decode_out_indices)]
        return self.head(injected)


def _level_strides(config: TopFormerConfig) -> tuple[int, ...]:
    """Stride of every pyramid level w.r.t. the input (the stem has stride 2)."""
    strides = []
    stride = 2
    for i, block in enumerate(config.blocks):
        stride *= block[3]
        if i in config.embed_out_indices:
            strides.append(stride)
    return tuple(strides)


def topformer(config: TopFormerConfig, num_classes: int | None = None) -> TopFormer:
    """Build ``config``, optionally with another number of classes."""
    if num_classes is not None:
        config = replace(config, num_classes=num_classes)
    return TopFormer(config)
