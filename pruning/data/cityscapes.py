"""Cityscapes fine annotations: 19 train classes from the official labelId -> trainId table."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeprune.pruning.data.base import IGNORE_INDEX, PairDataset, Recipe, require_dir, require_images, require_label
from edgeprune.pruning.data.transforms import ScaleJitter

CITYSCAPES_CLASSES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
    "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
)
# labelId of each trainId, from cityscapesscripts' labels.py; every other labelId 0..33 is ignored.
TRAIN_ID_SOURCES = (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33)
NUM_LABEL_IDS = 34


def _label_id_table() -> np.ndarray:
    """labelId -> trainId for all byte values; -1 marks values that are no labelId."""
    table = np.full(256, -1, np.int64)
    table[:NUM_LABEL_IDS] = IGNORE_INDEX
    table[IGNORE_INDEX] = IGNORE_INDEX
    table[list(TRAIN_ID_SOURCES)] = np.arange(len(TRAIN_ID_SOURCES))
    return table


LABEL_ID_TO_TRAIN_ID = _label_id_table()


class Cityscapes(PairDataset):
    """``leftImg8bit/<split>/<city>/<name>_leftImg8bit.png`` with ``gtFine/<split>/<city>/<name>_gtFine_*.png``.

    Uses ``_gtFine_labelTrainIds.png`` where it exists (already trainIds), else maps
    ``_gtFine_labelIds.png`` through the official table.
    """

    name = "cityscapes"
    class_names = CITYSCAPES_CLASSES
    recipe = Recipe(
        jitter=ScaleJitter(base=(2048, 1024), choices=(0.5, 0.75, 1.0, 2.0)),
        train_crop=(512, 1024),
        eval_size=(512, 1024),
    )

    def find_pairs(self, root: Path, split: str) -> list[tuple[Path, Path]]:
        images = require_dir(root / "leftImg8bit" / split, "Cityscapes image")
        pattern = "*/*_leftImg8bit.png"
        pairs = [self._pair(root / "gtFine" / split, image) for image in sorted(images.glob(pattern))]
        return require_images(pairs, images, pattern)

    @staticmethod
    def _pair(labels: Path, image: Path) -> tuple[Path, Path]:
        stem = labels / image.parent.name / image.name.removesuffix("_leftImg8bit.png")
        train_ids = stem.with_name(f"{stem.name}_gtFine_labelTrainIds.png")
        if train_ids.is_file():
            return image, train_ids
        return require_label(image, stem.with_name(f"{stem.name}_gtFine_labelIds.png"))

    def map_label(self, raw: np.ndarray, path: Path) -> np.ndarray:
        if path.name.endswith("_labelTrainIds.png"):
            return raw
        return np.where(raw < 256, LABEL_ID_TO_TRAIN_ID[np.minimum(raw, 255)], -1)
