"""What every dataset shares: its description, per-item seeding, and reading (image, label) files."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from edgeprune.base.errors import EdgepruneError
from edgeprune.pruning.data.transforms import EvalTransform, ScaleJitter, Size, TrainAugment, Transform

IGNORE_INDEX = 255
SPLITS = ("train", "val")
# mmseg's ImageNet statistics, in 0-255 RGB pixel units.
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


@dataclass(frozen=True, kw_only=True)
class DatasetInfo:
    """A dataset split as built: classes, sizes, and the normalization its images get.

    ``mean``/``std`` are per RGB channel in 0-255 pixel units. ``train_crop`` is the crop the
    train split yields and ``eval_size`` the size the val split resizes to (both (H, W)).
    """

    name: str
    num_classes: int
    ignore_index: int = IGNORE_INDEX
    class_names: tuple[str, ...]
    train_crop: Size
    eval_size: Size
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


class SegmentationDataset(Dataset, ABC):
    """``ds[i] -> (float32 [3, H, W] normalized image, int64 [H, W] label)``.

    Subclasses load item ``i`` as uint8 arrays; ``transform`` augments (train) or resizes (val)
    them. Its randomness for item ``i`` comes from a generator seeded by (seed, epoch, i): the
    same item in the same epoch is augmented identically in any process (DataLoader workers
    included), and differently in another epoch. The training loop calls ``set_epoch``.
    """

    def __init__(self, info: DatasetInfo, split: str, seed: int, transform: Transform) -> None:
        if seed < 0:
            raise EdgepruneError(f"{info.name}: the seed must be a non-negative integer, got {seed}")
        self.info = info
        self.split = split
        self.seed = seed
        self.transform = transform
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def item_rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, index])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(f"{self.info.name} {self.split}: index {index} out of range ({len(self)} items)")
        image, label = self.load(index)
        return self.transform(image, label, self.item_rng(index))

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Item ``index`` before transforms: image ``uint8 [H, W, 3]``, label ``uint8 [H, W]``."""


@dataclass(frozen=True)
class Recipe:
    """How a file-backed dataset is augmented and evaluated by default."""

    jitter: ScaleJitter
    train_crop: Size
    eval_size: Size


class PairDataset(SegmentationDataset):
    """A split of (image file, label file) pairs; subclasses find the pairs and map raw labels.

    Each label is checked when loaded: after :meth:`map_label` every value must be a class
    index or ``ignore_index``, otherwise the file and its offending raw values are named.
    """

    name: str
    class_names: tuple[str, ...]
    recipe: Recipe

    def __init__(self, root: Path, split: str, crop_size: Size | None = None, seed: int = 0) -> None:
        check_split(self.name, split)
        info = resized_info(
            DatasetInfo(
                name=self.name,
                num_classes=len(self.class_names),
                class_names=self.class_names,
                train_crop=self.recipe.train_crop,
                eval_size=self.recipe.eval_size,
            ),
            split,
            crop_size,
        )
        transform: Transform
        if split == "train":
            transform = TrainAugment(self.recipe.jitter, info.train_crop, info.ignore_index, info.mean, info.std)
        else:
            transform = EvalTransform(info.eval_size, info.mean, info.std)
        super().__init__(info, split, seed, transform)
        if not root.is_dir():
            raise EdgepruneError(f"{root}: {self.name} dataset folder not found")
        self.root = root
        self.pairs = self.find_pairs(root, split)

    @abstractmethod
    def find_pairs(self, root: Path, split: str) -> list[tuple[Path, Path]]:
        """(image, label) paths of ``split``; raise EdgepruneError for a broken layout."""

    @abstractmethod
    def map_label(self, raw: np.ndarray, path: Path) -> np.ndarray:
        """Raw label file values -> class indices / ignore_index; values outside the table -> -1."""

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        image_path, label_path = self.pairs[index]
        image = read_image(image_path)
        raw = read_label(label_path)
        if raw.shape != image.shape[:2]:
            raise EdgepruneError(
                f"{label_path}: label is {raw.shape[0]}x{raw.shape[1]} but its image {image_path.name} "
                f"is {image.shape[0]}x{image.shape[1]}"
            )
        return image, check_label(self.map_label(raw, label_path), raw, label_path, self.info)


def check_split(name: str, split: str) -> None:
    if split not in SPLITS:
        raise EdgepruneError(f"{name}: unknown split {split!r} (expected one of {', '.join(SPLITS)})")


def resized_info(info: DatasetInfo, split: str, crop_size: Size | None) -> DatasetInfo:
    """``info`` with the size ``split`` yields replaced by ``crop_size``, when one is given."""
    if crop_size is None:
        return info
    size = (int(crop_size[0]), int(crop_size[1]))
    return replace(info, train_crop=size) if split == "train" else replace(info, eval_size=size)


def check_label(mapped: np.ndarray, raw: np.ndarray, path: Path, info: DatasetInfo) -> np.ndarray:
    """``mapped`` as uint8 if every value is a class or ignore_index; else name the raw culprits."""
    valid = ((mapped >= 0) & (mapped < info.num_classes)) | (mapped == info.ignore_index)
    if not valid.all():
        bad = np.unique(raw[~valid])
        shown = ", ".join(str(v) for v in bad[:10]) + (", ..." if len(bad) > 10 else "")
        raise EdgepruneError(
            f"{path}: label values {shown} are out of range for {info.name} "
            f"({info.num_classes} classes, ignore {info.ignore_index})"
        )
    return mapped.astype(np.uint8)


def read_image(path: Path) -> np.ndarray:
    """RGB ``uint8 [H, W, 3]``; EdgepruneError if the file is unreadable or corrupt."""
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise EdgepruneError(f"{path}: unreadable or corrupt image ({exc})") from None


def read_label(path: Path) -> np.ndarray:
    """Class indices of a single-channel (palette or grayscale) PNG as an int64 [H, W] array.

    Palette images give their palette indices, not colours: that is how VOC stores classes.
    """
    try:
        with Image.open(path) as img:
            if img.mode not in ("P", "L", "I", "I;16"):
                raise EdgepruneError(f"{path}: label image has mode {img.mode}, expected a palette or grayscale PNG")
            return np.asarray(img).astype(np.int64)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise EdgepruneError(f"{path}: unreadable or corrupt label image ({exc})") from None


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise EdgepruneError(f"{path}: {what} folder not found")
    return path


def require_images(pairs: list[tuple[Path, Path]], folder: Path, pattern: str) -> list[tuple[Path, Path]]:
    """``pairs`` unless empty; then say which folder was searched for which files."""
    if not pairs:
        raise EdgepruneError(f"{folder}: no images found (expected {pattern} files there)")
    return pairs


def require_label(image: Path, label: Path) -> tuple[Path, Path]:
    if not label.is_file():
        raise EdgepruneError(f"{image}: no label file (expected {label})")
    return image, label
