"""PASCAL VOC 2012 segmentation: 21 classes in palette PNGs, 255 marks object borders (ignored)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeprune.base.errors import EdgepruneError
from edgeprune.pruning.data.base import PairDataset, Recipe, require_dir, require_images, require_label
from edgeprune.pruning.data.transforms import ScaleJitter

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)
AUG_LABELS = "SegmentationClassAug"
LABELS = "SegmentationClass"
# mmseg's name for the SBD-augmented train list (train_aug minus val).
AUG_LIST = "aug.txt"


def voc_root(root: Path) -> Path:
    """The VOC2012 folder, given it or the VOCdevkit folder holding it."""
    nested = root / "VOC2012"
    return nested if nested.is_dir() and not (root / "JPEGImages").is_dir() else root


class VOC(PairDataset):
    """``JPEGImages/<id>.jpg`` and ``SegmentationClass[Aug]/<id>.png`` for ids in ``ImageSets/Segmentation``.

    When ``SegmentationClassAug`` (SBD-augmented labels) is present the train split prefers
    its labels, and its list ``aug.txt`` if there is one.
    """

    name = "voc"
    class_names = VOC_CLASSES
    recipe = Recipe(jitter=ScaleJitter(base=(2048, 512)), train_crop=(512, 512), eval_size=(512, 512))

    def find_pairs(self, root: Path, split: str) -> list[tuple[Path, Path]]:
        root = voc_root(root)
        images = require_dir(root / "JPEGImages", "VOC image")
        preferred = [AUG_LABELS, LABELS] if split == "train" else [LABELS, AUG_LABELS]
        label_dirs = [root / d for d in preferred if (root / d).is_dir()]
        if not label_dirs:
            require_dir(root / LABELS, "VOC label")
        split_list = self._split_list(root / "ImageSets" / "Segmentation", split, has_aug=(root / AUG_LABELS).is_dir())
        pairs = [self._pair(images, label_dirs, split_list, name) for name in read_split_list(split_list)]
        return require_images(pairs, images, f"*.jpg listed in {split_list.name}")

    @staticmethod
    def _split_list(lists: Path, split: str, has_aug: bool) -> Path:
        if split == "train" and has_aug and (lists / AUG_LIST).is_file():
            return lists / AUG_LIST
        return lists / f"{split}.txt"

    @staticmethod
    def _pair(images: Path, label_dirs: list[Path], split_list: Path, name: str) -> tuple[Path, Path]:
        image = images / f"{name}.jpg"
        if not image.is_file():
            raise EdgepruneError(f"{split_list}: lists {name} but {image} does not exist")
        candidates = [d / f"{name}.png" for d in label_dirs]
        return require_label(image, next((p for p in candidates if p.is_file()), candidates[0]))

    def map_label(self, raw: np.ndarray, path: Path) -> np.ndarray:
        """Palette indices are the classes already; 255 (borders) is the ignore index."""
        return raw


def read_split_list(path: Path) -> list[str]:
    """Image ids of a VOC split list, one a line."""
    if not path.is_file():
        raise EdgepruneError(f"{path}: VOC split list not found")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]
