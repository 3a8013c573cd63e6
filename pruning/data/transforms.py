"""Segmentation augmentations on numpy arrays, after mmseg's TopFormer pipelines.

Images are ``uint8 [H, W, 3]`` RGB arrays and labels ``uint8 [H, W]`` class maps until the
last step, which normalizes and converts both to tensors. Every random choice is drawn from
the ``numpy.random.Generator`` passed in, so a caller that seeds it per item gets the same
augmentation back for the same item, in any process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np
import torch
from PIL import Image

Size = tuple[int, int]  # (height, width)


class Transform(Protocol):
    """``(uint8 image, uint8 label, rng) -> (normalized float32 [3, H, W], int64 [H, W])``."""

    def __call__(
        self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]: ...


@dataclass(frozen=True)
class ScaleJitter:
    """Random rescale of mmseg's ``RandomResize(keep_ratio=True)``.

    ``base`` is the (long edge, short edge) box an image is fitted into at ratio 1; the ratio is
    uniform in ``[low, high]``, or one of ``choices`` when those are given.
    """

    base: tuple[int, int]
    low: float = 0.5
    high: float = 2.0
    choices: tuple[float, ...] = ()

    def sample(self, rng: np.random.Generator) -> float:
        if self.choices:
            return float(self.choices[rng.integers(len(self.choices))])
        return float(rng.uniform(self.low, self.high))

    def target_size(self, size: Size, ratio: float) -> Size:
        """Keep-ratio size of an image of ``size`` fitted into ``base * ratio``."""
        h, w = size
        long_edge, short_edge = self.base[0] * ratio, self.base[1] * ratio
        factor = min(long_edge / max(h, w), short_edge / min(h, w))
        return max(1, int(h * factor + 0.5)), max(1, int(w * factor + 0.5))


@dataclass(frozen=True)
class TrainAugment:
    """The training pipeline: rescale, crop, flip, photometric distortion, normalize, pad."""

    jitter: ScaleJitter
    crop: Size
    ignore_index: int
    mean: Sequence[float]
    std: Sequence[float]
    cat_max_ratio: float = 0.75
    flip_prob: float = 0.5
    photometric: bool = True

    def __call__(
        self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        size = self.jitter.target_size(label.shape, self.jitter.sample(rng))
        image, label = resize_pair(image, label, size)
        image, label = random_crop(image, label, self.crop, rng, self.ignore_index, self.cat_max_ratio)
        if rng.random() < self.flip_prob:
            image, label = hflip(image, label)
        pixels = photometric_distortion(image, rng) if self.photometric else image.astype(np.float32)
        return pad_to(normalize(pixels, self.mean, self.std), label, self.crop, self.ignore_index)


@dataclass(frozen=True)
class FlipAugment:
    """Horizontal flip with probability ``flip_prob``, then normalize: for generated scenes."""

    mean: Sequence[float]
    std: Sequence[float]
    flip_prob: float = 0.5

    def __call__(
        self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if rng.random() < self.flip_prob:
            image, label = hflip(image, label)
        return to_tensors(normalize(image.astype(np.float32), self.mean, self.std), label)


@dataclass(frozen=True)
class EvalTransform:
    """Deterministic resize to ``size`` (bilinear image, nearest label), then normalize; ``rng`` is unused."""

    size: Size
    mean: Sequence[float]
    std: Sequence[float]

    def __call__(
        self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        image, label = resize_pair(image, label, self.size)
        return to_tensors(normalize(image.astype(np.float32), self.mean, self.std), label)


def resize_pair(image: np.ndarray, label: np.ndarray, size: Size) -> tuple[np.ndarray, np.ndarray]:
    """Resize image bilinearly and label by nearest neighbour to ``size`` (H, W)."""
    if label.shape == tuple(size):
        return image, label
    h, w = size
    image = np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR))
    label = np.asarray(Image.fromarray(label).resize((w, h), Image.NEAREST))
    return image, label


def random_crop(
    image: np.ndarray,
    label: np.ndarray,
    crop: Size,
    rng: np.random.Generator,
    ignore_index: int,
    cat_max_ratio: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Crop to at most ``crop``; retry up to 10 times while one class fills >= ``cat_max_ratio``.

    Like mmseg, a crop is accepted early only when it holds at least two labelled classes and
    the largest covers less than ``cat_max_ratio`` of the labelled pixels; after 10 tries the
    last drawn crop is kept.
    """
    h, w = label.shape
    ch, cw = min(crop[0], h), min(crop[1], w)

    def draw() -> tuple[slice, slice]:
        top, left = rng.integers(h - ch + 1), rng.integers(w - cw + 1)
        return slice(top, top + ch), slice(left, left + cw)

    box = draw()
    if cat_max_ratio < 1.0:
        for _ in range(10):
            counts = np.bincount(label[box].ravel(), minlength=256)
            counts[ignore_index] = 0
            counts = counts[counts > 0]
            if len(counts) > 1 and counts.max() < cat_max_ratio * counts.sum():
                break
            box = draw()
    return image[box], label[box]


def hflip(image: np.ndarray, label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return image[:, ::-1], label[:, ::-1]


def photometric_distortion(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """mmseg's PhotoMetricDistortion, each step applied with probability 0.5, on 0-255 floats.

    Brightness delta in [-32, 32], contrast in [0.5, 1.5] (before or after the colour steps,
    at random), saturation factor in [0.5, 1.5], hue shift in [-36, 36] degrees.
    """
    pixels = image.astype(np.float32)
    if rng.random() < 0.5:
        pixels = np.clip(pixels + rng.uniform(-32, 32), 0, 255)
    contrast_first = rng.random() < 0.5
    if contrast_first and rng.random() < 0.5:
        pixels = np.clip(pixels * rng.uniform(0.5, 1.5), 0, 255)
    saturation = rng.uniform(0.5, 1.5) if rng.random() < 0.5 else 1.0
    hue_shift = rng.integers(-18, 19) / 180.0 if rng.random() < 0.5 else 0.0
    if saturation != 1.0 or hue_shift != 0.0:
        hsv = rgb_to_hsv(pixels)
        hsv[..., 0] = (hsv[..., 0] + hue_shift) % 1.0
        hsv[..., 1] = np.clip(hsv[..., 1] * saturation, 0, 1)
        pixels = hsv_to_rgb(hsv)
    if not contrast_first and rng.random() < 0.5:
        pixels = np.clip(pixels * rng.uniform(0.5, 1.5), 0, 255)
    return pixels


def rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """RGB in [0, 255] -> HSV with hue, saturation in [0, 1) / [0, 1] and value in [0, 255]."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    value = rgb.max(-1)
    chroma = value - rgb.min(-1)
    safe = np.where(chroma > 0, chroma, 1)
    hue = np.where(value == r, (g - b) / safe, np.where(value == g, 2 + (b - r) / safe, 4 + (r - g) / safe))
    hue = np.where(chroma > 0, (hue / 6.0) % 1.0, 0.0)
    saturation = np.where(value > 0, chroma / np.where(value > 0, value, 1), 0.0)
    return np.stack([hue, saturation, value], -1).astype(np.float32)


def hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_hsv`."""
    hue, saturation, value = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    k = (np.array([5.0, 3.0, 1.0], dtype=np.float32) + hue[..., None] * 6.0) % 6.0
    weight = np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    return (value[..., None] * (1.0 - saturation[..., None] * weight)).astype(np.float32)


def normalize(pixels: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """(pixels - mean) / std per channel, with mean/std in 0-255 units."""
    return (pixels - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)


def pad_to(
    image: np.ndarray, label: np.ndarray, size: Size, ignore_index: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad bottom/right to ``size`` with 0 (image, already normalized) and ``ignore_index`` (label)."""
    h, w = label.shape
    if (h, w) != tuple(size):
        padded_image = np.zeros((size[0], size[1], 3), np.float32)
        padded_label = np.full(size, ignore_index, np.uint8)
        padded_image[:h, :w], padded_label[:h, :w] = image, label
        image, label = padded_image, padded_label
    return to_tensors(image, label)


def to_tensors(image: np.ndarray, label: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """``float32 [3, H, W]`` image and ``int64 [H, W]`` label tensors."""
    image_t = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32))
    label_t = torch.from_numpy(np.ascontiguousarray(label, dtype=np.int64))
    return image_t, label_t
