"""Procedural segmentation scenes, generated on the fly: a dataset that needs no files.

Each scene is a textured background with 3-10 rotated, overlapping shapes drawn back to front
(the label is the topmost shape), at sizes from a few pixels to half the image. The class of a
shape is its outline; its colour and texture are drawn from a class-specific distribution that
overlaps with the others' (neighbouring hues, shared textures, backgrounds of any hue), so a
network must use shape and context, not colour alone. Lighting, contrast, blur and noise vary
per image. A scene is a pure function of (seed, split, index).
"""

from __future__ import annotations

import colorsys
from typing import Callable

import numpy as np

from edgeprune.pruning.data.base import DatasetInfo, SegmentationDataset, check_split, resized_info
from edgeprune.pruning.data.transforms import EvalTransform, FlipAugment, Size, Transform

SYNTHETIC_CLASSES = ("background", "ellipse", "rectangle", "triangle", "blob", "ring", "star", "cross")
DEFAULT_SIZE = (256, 256)
DEFAULT_TRAIN_IMAGES = 2000
VAL_IMAGES = 200
# Measured over 500 default-size train scenes.
SYNTHETIC_MEAN = (111.0, 109.0, 111.0)
SYNTHETIC_STD = (56.0, 56.0, 57.0)
# Scene seeds are (tag, seed, split stream, index): disjoint between splits and from augmentation seeds.
_SCENE_TAG = 0x5CE4E
_SPLIT_STREAMS = {"train": 0, "val": 1}

Array = np.ndarray
Shape = Callable[[np.random.Generator, Array, Array, float], Array]
Texture = Callable[[np.random.Generator, Array, Array], Array]


def render_scene(rng: np.random.Generator, h: int, w: int) -> tuple[Array, Array]:
    """One scene of ``h`` x ``w``: RGB ``uint8 [h, w, 3]`` and class map ``uint8 [h, w]``."""
    image = _background(rng, h, w)
    label = np.zeros((h, w), np.uint8)
    count = int(rng.integers(3, 11))
    classes = rng.integers(1, len(SYNTHETIC_CLASSES), count)
    radii = np.exp(rng.uniform(np.log(0.03), np.log(0.5), count)) * min(h, w)
    # Mostly large-to-small so small shapes stay visible, with enough jitter to occlude some.
    order = np.argsort(-radii * rng.lognormal(0.0, 0.5, count))
    for i in order:
        _draw_shape(rng, image, label, int(classes[i]), float(radii[i]))
    return _camera(rng, image), label


def _background(rng: np.random.Generator, h: int, w: int) -> Array:
    u, v = _rotated_grid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), rng.uniform(0, np.pi))
    texture = _TEXTURES[int(rng.integers(len(_TEXTURES)))]
    light = _hsv(rng.uniform(), rng.uniform(0.05, 0.7), rng.uniform(0.3, 0.95))
    dark = _hsv(rng.uniform(), rng.uniform(0.05, 0.7), rng.uniform(0.1, 0.7))
    return _paint(texture(rng, u, v), light, dark)


# Shapes: boolean masks over shape-local coordinates (u, v), ``r`` the shape's half-size in pixels.
def _ellipse(rng: np.random.Generator, u: Array, v: Array, r: float) -> Array:
    b = r * rng.uniform(0.45, 1.0)
    return (u / r) ** 2 + (v / b) ** 2 <= 1.0


def _rectangle(rng: np.random.Generator, u: Array, v: Array, r: float) -> Array:
    b = r * rng.uniform(0.35, 1.0)
    return (np.abs(u) <= r * 0.8) & (np.abs(v) <= b * 0.8)


def _triangle(rng: np.random.Generator, u: Array, v: Array, r: float) -> Array:
    return _polygon_radius(u, v * rng.uniform(1.0, 1.8), 3) <= r * 0.5


def _blob(rng: np.random.Generator, u: Array, v: Array, r: float) -> Array:
    theta = np.arctan2(v, u)
    wobble = sum(rng.uniform(-0.18, 0.18) * np.cos(k * theta + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 5))
    return np.hypot(u, v) <= r * 0.75 * (1.0 + wobble)


def _ring(rng: np.random.Generator, u: Array, v: Array, r: float) -> Array:
    rho = np.hypot(u / r, v / (r * rng.uniform(0.6, 1.0)))
    return (rho <= 1.0) & (rho >= rng.uniform(0.45, 0.75))


def _star(rng: np.random.Generator, u: Array, v: Array, r: float) -> Array:
    points, inner = int(rng.integers(5, 8)), rng.uniform(0.35, 0.6)
    spikes = 0.5 + 0.5 * np.cos(points * np.arctan2(v, u))
    return np.hypot(u, v) <= r * (inner + (1.0 - inner) * spikes**2)


def _cross(rng: np.random.Generator, u: Array, v: Array, r: float) -> Array:
    arm = r * rng.uniform(0.18, 0.35)
    au, av = np.abs(u), np.abs(v)
    return ((au <= r) & (av <= arm)) | ((au <= arm) & (av <= r))


def _polygon_radius(u: Array, v: Array, sides: int) -> Array:
    """Distance measure whose level sets are regular ``sides``-gons (value = apothem)."""
    sector = 2 * np.pi / sides
    theta = np.mod(np.arctan2(v, u), sector) - sector / 2
    return np.hypot(u, v) * np.cos(theta)


# Textures map shape-local coordinates to a mix weight in [0, 1] between two colours.
def _flat(rng: np.random.Generator, u: Array, v: Array) -> Array:
    return np.zeros_like(u)


def _stripes(rng: np.random.Generator, u: Array, v: Array) -> Array:
    period = rng.uniform(3.0, 10.0)
    return (np.sin(u * (2 * np.pi / period) + rng.uniform(0, 2 * np.pi)) > 0).astype(np.float32)


def _checker(rng: np.random.Generator, u: Array, v: Array) -> Array:
    period = rng.uniform(3.0, 10.0)
    return ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float32)


def _dots(rng: np.random.Generator, u: Array, v: Array) -> Array:
    period = rng.uniform(4.0, 10.0)
    du, dv = np.mod(u, period) - period / 2, np.mod(v, period) - period / 2
    return (du * du + dv * dv <= (period * rng.uniform(0.2, 0.4)) ** 2).astype(np.float32)


def _gradient(rng: np.random.Generator, u: Array, v: Array) -> Array:
    span = max(float(np.ptp(u)), 1.0)
    return (u - u.min()) / span


def _blotches(rng: np.random.Generator, u: Array, v: Array) -> Array:
    cells = max(2, int(max(u.shape) / rng.uniform(6.0, 16.0)))
    return np.clip(0.5 + 2.0 * _smooth_noise(rng, u.shape, cells), 0.0, 1.0)


_TEXTURES: tuple[Texture, ...] = (_flat, _stripes, _checker, _dots, _gradient, _blotches)
# Each class: its shape, its usual texture (used 60% of the time), and the centre of its hue distribution.
_CLASSES: dict[int, tuple[Shape, Texture, float]] = {
    1: (_ellipse, _blotches, 0.00),
    2: (_rectangle, _checker, 0.14),
    3: (_triangle, _gradient, 0.28),
    4: (_blob, _stripes, 0.42),
    5: (_ring, _flat, 0.57),
    6: (_star, _dots, 0.71),
    7: (_cross, _stripes, 0.85),
}


def _draw_shape(rng: np.random.Generator, image: Array, label: Array, cls: int, radius: float) -> None:
    """Paint one rotated, textured shape of class ``cls`` over ``image`` and ``label`` in place."""
    h, w = label.shape
    shape, usual_texture, hue = _CLASSES[cls]
    cy, cx = rng.uniform(-0.1 * h, 1.1 * h), rng.uniform(-0.1 * w, 1.1 * w)
    y0, y1 = max(0, int(cy - radius)), min(h, int(cy + radius) + 1)
    x0, x1 = max(0, int(cx - radius)), min(w, int(cx + radius) + 1)
    if y0 >= y1 or x0 >= x1:
        return
    dy, dx = np.arange(y0, y1, dtype=np.float32) - cy, np.arange(x0, x1, dtype=np.float32) - cx
    u, v = _rotated_grid(dy, dx, rng.uniform(0, 2 * np.pi))
    mask = shape(rng, u, v, radius)
    texture = usual_texture if rng.random() < 0.6 else _TEXTURES[int(rng.integers(len(_TEXTURES)))]
    if rng.random() < 0.15:
        hue = rng.uniform()
    light = _hsv(hue + rng.normal(0, 0.07), rng.uniform(0.3, 1.0), rng.uniform(0.45, 1.0))
    dark = _hsv(hue + rng.normal(0, 0.07), rng.uniform(0.3, 1.0), rng.uniform(0.1, 0.6))
    shading = 1.0 + rng.uniform(-0.3, 0.3) * u / radius
    pixels = _paint(texture(rng, u, v), light, dark) * shading[..., None]
    image[y0:y1, x0:x1][mask] = pixels[mask]
    label[y0:y1, x0:x1][mask] = cls


def _rotated_grid(ys: Array, xs: Array, angle: float) -> tuple[Array, Array]:
    """Coordinates ``(u, v)`` of the grid ``ys x xs`` in axes rotated by ``angle``, as float32 [H, W]."""
    cos, sin = np.float32(np.cos(angle)), np.float32(np.sin(angle))
    ys, xs = ys[:, None], xs[None, :]
    return xs * cos + ys * sin, ys * cos - xs * sin


def _camera(rng: np.random.Generator, image: Array) -> Array:
    """Uneven lighting, global brightness/contrast, optional blur, and sensor noise."""
    h, w = image.shape[:2]
    image = image * (1.0 + 0.3 * _smooth_noise(rng, (h, w), 3))[..., None]
    image = (image - 128.0) * rng.uniform(0.6, 1.3) + 128.0 + rng.uniform(-35, 35)
    if rng.random() < 0.5:
        image = _blur(image, rng.uniform(0.5, 1.5))
    image += rng.standard_normal(image.shape, np.float32) * rng.uniform(2.0, 14.0)
    return np.clip(image, 0, 255).astype(np.uint8)


def _blur(image: Array, sigma: float) -> Array:
    """Separable 5-tap gaussian blur with edge replication."""
    taps = np.exp(-0.5 * (np.arange(-2, 3) / sigma) ** 2)
    taps /= taps.sum()
    h, w = image.shape[:2]
    padded = np.pad(image, ((2, 2), (0, 0), (0, 0)), mode="edge")
    image = sum(t * padded[k : k + h] for k, t in enumerate(taps))
    padded = np.pad(image, ((0, 0), (2, 2), (0, 0)), mode="edge")
    return sum(t * padded[:, k : k + w] for k, t in enumerate(taps)).astype(np.float32)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], cells: int) -> Array:
    """Bilinearly upsampled ``(cells + 1)^2`` grid of uniform [-1, 1] values, as float32 ``shape``."""
    grid = rng.uniform(-1.0, 1.0, (cells + 1, cells + 1)).astype(np.float32)
    rows = _lerp_axis(grid, shape[0], cells, axis=0)
    return _lerp_axis(rows, shape[1], cells, axis=1)


def _lerp_axis(grid: Array, size: int, cells: int, axis: int) -> Array:
    pos = np.linspace(0, cells, size, dtype=np.float32)
    lo = np.minimum(pos.astype(np.int64), cells - 1)
    frac = pos - lo
    a, b = np.take(grid, lo, axis), np.take(grid, lo + 1, axis)
    frac = frac[:, None] if axis == 0 else frac[None, :]
    return a + (b - a) * frac


def _paint(mix: Array, first: Array, second: Array) -> Array:
    """float32 ``[..., 3]`` colours: ``first`` where ``mix`` is 0, ``second`` where it is 1."""
    return first + (second - first) * mix[..., None]


def _hsv(hue: float, saturation: float, value: float) -> Array:
    return np.array(colorsys.hsv_to_rgb(hue % 1.0, saturation, value), np.float32) * 255.0


class Synthetic(SegmentationDataset):
    """Generated scenes: ``num_train`` for train, 200 for val, from disjoint seed streams.

    Images are generated directly at ``crop_size`` (default 256x256); the train split flips
    them at random, the val split is used as generated.
    """

    def __init__(
        self, split: str, crop_size: Size | None = None, seed: int = 0, num_train: int = DEFAULT_TRAIN_IMAGES
    ) -> None:
        check_split("synthetic", split)
        info = resized_info(
            DatasetInfo(
                name="synthetic",
                num_classes=len(SYNTHETIC_CLASSES),
                class_names=SYNTHETIC_CLASSES,
                train_crop=DEFAULT_SIZE,
                eval_size=DEFAULT_SIZE,
                mean=SYNTHETIC_MEAN,
                std=SYNTHETIC_STD,
            ),
            split,
            crop_size,
        )
        self.size = info.train_crop if split == "train" else info.eval_size
        transform: Transform = (
            FlipAugment(info.mean, info.std) if split == "train" else EvalTransform(self.size, info.mean, info.std)
        )
        super().__init__(info, split, seed, transform)
        self.count = num_train if split == "train" else VAL_IMAGES

    def __len__(self) -> int:
        return self.count

    def load(self, index: int) -> tuple[Array, Array]:
        rng = np.random.default_rng([_SCENE_TAG, self.seed, _SPLIT_STREAMS[self.split], index])
        return render_scene(rng, *self.size)
