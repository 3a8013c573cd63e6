"""Third-party architectures for the model-zoo conformance benchmark (``benchmarks/zoo.py``).

Plain-PyTorch reimplementations of the designs users bring from torchvision, timm and
segmentation_models_pytorch (which cannot be installed beside the pinned torch here), in the
op patterns those libraries produce; random weights, nothing downloaded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from benchmarks.zoo_designs import decoders, encoders


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
)
ZOO: dict[str, ZooNet] = {net.name: net for net in _NETS}
