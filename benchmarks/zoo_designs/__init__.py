"""Third-party architectures for the model-zoo conformance benchmark (``benchmarks/zoo.py``).

Plain-PyTorch reimplementations of the designs users bring from torchvision, timm and
segmentation_models_pytorch (which cannot be installed beside the pinned torch here), in the
op patterns those libraries produce; random weights, nothing downloaded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from benchmarks.zoo_designs import decoders, encoders, more_decoders, more_encoders


@dataclass(frozen=True)
class ZooNet:
    name: str
    builder: Callable[..., nn.Module]  # a module-level function: also ``--model MODULE:FUNCTION``
    input_hw: tuple[int, int]
    task: str  # "segmentation" or "classification"
    mirrors: str


_NETS = (
    ZooNet("mobilenetv2", encoders.mobilenetv2, (224, 224), "classification", "torchvision mobilenet_v2"),
    ZooNet("mobilenetv3-large", encoders.mobilenetv3_large, (224, 224), "classification", "torchvision mobilenet_v3_large"),
    ZooNet("resnet18", encoders.resnet18, (224, 224), "classification", "torchvision resnet18"),
    ZooNet("efficientnet-b0", encoders.efficientnet_b0, (224, 224), "classification", "timm efficientnet_b0"),
    ZooNet("shufflenetv2", encoders.shufflenetv2, (224, 224), "classification", "torchvision shufflenet_v2_x1_0"),
    ZooNet("fpn-mobilenetv2", decoders.fpn_mobilenetv2, (256, 256), "segmentation", "smp FPN (merge add), mobilenet_v2"),
    ZooNet("fpn-cat-mobilenetv3", decoders.fpn_cat_mobilenetv3, (256, 256), "segmentation", "smp FPN (merge cat), mobilenet_v3"),
    ZooNet("unet-mobilenetv2", decoders.unet_mobilenetv2, (256, 256), "segmentation", "smp Unet, mobilenet_v2"),
    ZooNet("unet-resnet18", decoders.unet_resnet18, (256, 256), "segmentation", "smp Unet, resnet18"),
    ZooNet("deeplabv3-mobilenetv2", decoders.deeplabv3_mobilenetv2, (256, 256), "segmentation", "torchvision deeplabv3, OS 16"),
    ZooNet("deeplabv3plus-mobilenetv2", decoders.deeplabv3plus_mobilenetv2, (256, 256), "segmentation", "smp DeepLabV3Plus"),
    ZooNet("lraspp-mobilenetv3", decoders.lraspp_mobilenetv3, (256, 256), "segmentation",
           "torchvision lraspp_mobilenet_v3_large"),
    ZooNet("pspnet-mobilenetv2", decoders.pspnet_mobilenetv2, (256, 256), "segmentation", "smp PSPNet (1/8 features)"),
    ZooNet("linknet-resnet18", decoders.linknet_resnet18, (256, 256), "segmentation", "smp Linknet (transposed convs)"),
    ZooNet("regnetx-400mf", more_encoders.regnetx_400mf, (224, 224), "classification", "torchvision regnet_x_400mf"),
    ZooNet("ghostnet", more_encoders.ghostnet, (224, 224), "classification", "timm ghostnet_100 (no SE)"),
    ZooNet("squeezenet", more_encoders.squeezenet, (224, 224), "classification", "torchvision squeezenet1_1"),
    ZooNet("convnext-atto", more_encoders.convnext_atto, (224, 224), "classification", "timm convnext_atto"),
    ZooNet("segformer-b0", more_decoders.segformer_b0, (256, 256), "segmentation", "SegFormer-B0 (MiT-B0, MLP head)"),
    ZooNet("fast-scnn", more_decoders.fast_scnn, (256, 256), "segmentation", "Fast-SCNN"),
    ZooNet("fpn-regnetx", more_decoders.fpn_regnetx, (256, 256), "segmentation", "smp FPN, regnetx_004"),
    ZooNet("unet-convnext", more_decoders.unet_convnext, (256, 256), "segmentation", "smp Unet, convnext_atto"),
    ZooNet("fpn-cat-convnext", more_decoders.fpn_cat_convnext, (256, 256), "segmentation", "smp FPN (merge cat), convnext_atto"),
    ZooNet("unet-efficientnet-b0", more_decoders.unet_efficientnet_b0, (256, 256), "segmentation", "smp Unet, efficientnet-b0"),
    ZooNet("deeplabv3plus-efficientnet-b0", more_decoders.deeplabv3plus_efficientnet_b0, (256, 256), "segmentation",
           "smp DeepLabV3Plus, efficientnet-b0 (OS 32)"),
    ZooNet("fpn-ghostnet", more_decoders.fpn_ghostnet, (256, 256), "segmentation", "smp FPN, ghostnet"),
    ZooNet("unet-regnetx", more_decoders.unet_regnetx, (256, 256), "segmentation", "smp Unet, regnetx_004"),
    ZooNet("linknet-mobilenetv2", more_decoders.linknet_mobilenetv2, (256, 256), "segmentation", "smp Linknet, mobilenet_v2"),
    ZooNet("pspnet-resnet18", more_decoders.pspnet_resnet18, (256, 256), "segmentation", "smp PSPNet, resnet18"),
    ZooNet("segformer-head-mobilenetv3", more_decoders.segformer_head_mobilenetv3, (256, 256), "segmentation",
           "SegFormer's MLP head on mobilenet_v3_large"),
)
ZOO: dict[str, ZooNet] = {net.name: net for net in _NETS}
