"""More segmentation nets: SegFormer-B0 (MiT encoder, all-MLP decoder), Fast-SCNN (learning to
downsample, global features, pyramid pooling, fusion by addition), and the decoders users pair
with other encoders (segmentation_models_pytorch's encoder/decoder grid): grouped (RegNetX),
ghost, SiLU (EfficientNet), transformer-era (ConvNeXt) and mobile encoders."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from benchmarks.zoo_designs.blocks import InvertedResidual, calibrated, conv_bn_act, upsample_like
from benchmarks.zoo_designs.decoders import FPN, DeepLabV3, Linknet, PSPNet, UNet
from benchmarks.zoo_designs.encoders import EfficientNetB0, MobileNetV2, MobileNetV3Large, ResNet18
from benchmarks.zoo_designs.more_encoders import ConvNeXtAtto, GhostNet, MiTB0, RegNetX400MF


class SegFormerHead(nn.Module):
    """Every stage projected to ``dim`` by a 1x1 conv, upsampled to stride 4, concatenated, fused."""

    def __init__(self, encoder: nn.Module, num_classes: int, dim: int = 256) -> None:
        super().__init__()
        self.encoder = encoder
        self.projections = nn.ModuleList(nn.Conv2d(c, dim, 1) for c in encoder.channels)
        self.fuse = conv_bn_act(4 * dim, dim, 1)
        self.classifier = nn.Conv2d(dim, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.encoder(x)
        fine = feats[0]
        y = torch.cat([upsample_like(p(f), fine) for p, f in zip(self.projections, feats)], dim=1)
        return upsample_like(self.classifier(self.fuse(y)), x)


def dsconv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    """Depth-wise separable conv: depth-wise 3x3 + BN + ReLU, pointwise + BN + ReLU."""
    return nn.Sequential(conv_bn_act(cin, cin, 3, stride, groups=cin), conv_bn_act(cin, cout, 1))


class PyramidPooling(nn.Module):
    """PSPNet's pooling at 1, 2, 3 and 6 bins, each reduced and upsampled back, concatenated."""

    def __init__(self, channels: int, cout: int) -> None:
        super().__init__()
        self.bins = (1, 2, 3, 6)
        self.reduce = nn.ModuleList(conv_bn_act(channels, channels // 4, 1) for _ in self.bins)
        self.out = conv_bn_act(2 * channels, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = [upsample_like(r(F.adaptive_avg_pool2d(x, b)), x) for r, b in zip(self.reduce, self.bins)]
        return self.out(torch.cat([x, *pooled], dim=1))


class FastSCNN(nn.Module):
    """Fast-SCNN (Poudel et al.): shared downsampling to 1/8, global features at 1/32, fusion at 1/8."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.downsample = nn.Sequential(conv_bn_act(3, 32, 3, 2), dsconv(32, 48, 2), dsconv(48, 64, 2))
        blocks, cin = [], 64
        for cout, stride in ((64, 2), (64, 1), (64, 1), (96, 2), (96, 1), (96, 1), (128, 1), (128, 1), (128, 1)):
            blocks.append(InvertedResidual(cin, cout, stride, 6, act=nn.ReLU))
            cin = cout
        self.global_features = nn.Sequential(*blocks, PyramidPooling(128, 128))
        self.low = conv_bn_act(64, 128, 1, act=None)
        self.high = nn.Sequential(conv_bn_act(128, 128, 3, groups=128), conv_bn_act(128, 128, 1, act=None))
        self.classifier = nn.Sequential(dsconv(128, 128), dsconv(128, 128), nn.Conv2d(128, num_classes, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shared = self.downsample(x)
        context = self.global_features(shared)
        fused = F.relu(self.low(shared) + self.high(upsample_like(context, shared)))
        return upsample_like(self.classifier(fused), x)


def segformer_b0(num_classes: int = 19) -> nn.Module:
    return calibrated(SegFormerHead(MiTB0(), num_classes), 256)


def fast_scnn(num_classes: int = 19) -> nn.Module:
    return calibrated(FastSCNN(num_classes), 256)


def fpn_regnetx(num_classes: int = 19) -> nn.Module:
    return calibrated(FPN(RegNetX400MF(), num_classes), 256)


def unet_convnext(num_classes: int = 19) -> nn.Module:
    return calibrated(UNet(ConvNeXtAtto(), num_classes), 256)


def fpn_cat_convnext(num_classes: int = 19) -> nn.Module:
    return calibrated(FPN(ConvNeXtAtto(), num_classes, merge="cat"), 256)


def unet_efficientnet_b0(num_classes: int = 19) -> nn.Module:
    return calibrated(UNet(EfficientNetB0(), num_classes), 256)


def deeplabv3plus_efficientnet_b0(num_classes: int = 19) -> nn.Module:
    return calibrated(DeepLabV3(EfficientNetB0(), num_classes, plus=True), 256)


def fpn_ghostnet(num_classes: int = 19) -> nn.Module:
    return calibrated(FPN(GhostNet(), num_classes), 256)


def unet_regnetx(num_classes: int = 19) -> nn.Module:
    return calibrated(UNet(RegNetX400MF(), num_classes), 256)


def linknet_mobilenetv2(num_classes: int = 19) -> nn.Module:
    return calibrated(Linknet(MobileNetV2(), num_classes), 256)


def pspnet_resnet18(num_classes: int = 19) -> nn.Module:
    return calibrated(PSPNet(ResNet18(), num_classes), 256)


def segformer_head_mobilenetv3(num_classes: int = 19) -> nn.Module:
    return calibrated(SegFormerHead(MobileNetV3Large(), num_classes), 256)
