"""Segmentation outputs of several checkpoints on the same images, as inline PNG data URIs.

Images come from a dataset's val split (default: the built-in synthetic scenes), resized to
the first checkpoint's input size; each model's logits are upsampled to the label size and
arg-maxed, as mIoU evaluation does. Classes get fixed colours; ignored pixels are black.
"""

from __future__ import annotations

import base64
import colorsys
import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from edgeprune.pruning.checkpoint import Checkpoint

IGNORED = (0, 0, 0)


@dataclass(frozen=True)
class Prediction:
    title: str
    uri: str
    pixel_accuracy: float


@dataclass(frozen=True)
class Sample:
    index: int
    image_uri: str
    truth_uri: str
    predictions: list[Prediction]


def palette(num_classes: int) -> np.ndarray:
    """``uint8 [256, 3]``: class 0 dark grey, then well-separated hues (golden-ratio steps); 255 black."""
    colours = np.zeros((256, 3), np.uint8)
    colours[0] = (64, 64, 64)
    for c in range(1, min(num_classes, 255)):
        hue = (c * 0.618034) % 1.0
        value = 0.95 if c % 2 else 0.75
        colours[c] = [round(255 * v) for v in colorsys.hsv_to_rgb(hue, 0.75, value)]
    colours[255] = IGNORED
    return colours


def png_uri(rgb: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


@dataclass(frozen=True)
class Segmentations:
    samples: list[Sample]
    legend: list[tuple[str, str]]  # (class name, "#rrggbb")
    data: str


@torch.no_grad()
def segmentation_samples(checkpoints: Sequence[tuple[str, Checkpoint]], data: str = "synthetic",
                         count: int = 4) -> Segmentations:
    """``count`` val images with their ground truth and each titled checkpoint's prediction."""
    from edgeprune.pruning.data import build_dataset
    from edgeprune.pruning.evaluate import upsample_logits

    height, width = checkpoints[0][1].arch.input_shape[2:]
    dataset = build_dataset(data, "val", crop_size=(height, width))
    mean = np.asarray(dataset.info.mean, np.float32)
    std = np.asarray(dataset.info.std, np.float32)
    colours = palette(max(dataset.info.num_classes, *(c.arch.num_classes for _, c in checkpoints)))
    samples = []
    for index in range(min(count, len(dataset))):
        image, label = dataset[index]
        rgb = np.clip(image.permute(1, 2, 0).numpy() * std + mean, 0, 255)
        truth = label.numpy()
        valid = truth != dataset.info.ignore_index
        predictions = []
        for title, ckpt in checkpoints:
            logits = upsample_logits(ckpt.model.eval()(image[None]), truth.shape)
            predicted = logits.argmax(1)[0].numpy()
            accuracy = float((predicted[valid] == truth[valid]).mean()) if valid.any() else float("nan")
            predictions.append(Prediction(title, png_uri(colours[predicted]), accuracy))
        samples.append(Sample(index, png_uri(rgb), png_uri(colours[truth]), predictions))
    legend = [(name, "#%02x%02x%02x" % tuple(colours[c])) for c, name in enumerate(dataset.info.class_names)]
    return Segmentations(samples, legend, data)
