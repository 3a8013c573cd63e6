"""Writers for small fake dataset trees: PIL-written images and label maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_image(path: Path, h: int = 24, w: int = 32, seed: int = 0) -> np.ndarray:
    """A random RGB image (JPEG or PNG by suffix); returns the pixels written."""
    pixels = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return pixels


def write_label(path: Path, values: np.ndarray, palette: list[int] | None = None) -> None:
    """A grayscale PNG of ``values``, or a palette PNG when ``palette`` is given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    values = np.ascontiguousarray(values, dtype=np.uint8)
    if palette is None:
        img = Image.fromarray(values)
    else:
        img = Image.frombytes("P", (values.shape[1], values.shape[0]), values.tobytes())
        img.putpalette(palette)
    img.save(path)


def stripes(h: int, w: int, values: list[int]) -> np.ndarray:
    """A label of vertical bands, one per value, so every value is present."""
    bands = np.array_split(np.arange(w), len(values))
    label = np.zeros((h, w), np.uint8)
    for band, value in zip(bands, values):
        label[:, band] = value
    return label
