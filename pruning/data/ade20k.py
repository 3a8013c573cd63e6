"""ADE20K (SceneParsing, ``ADEChallengeData2016``): 150 classes, label 0 ("other") ignored."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeprune.pruning.data.base import IGNORE_INDEX, PairDataset, Recipe, require_dir, require_images, require_label
from edgeprune.pruning.data.transforms import ScaleJitter

ADE20K_CLASSES = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass",
    "cabinet", "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair",
    "car", "water", "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field",
    "armchair", "seat", "fence", "desk", "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion",
    "base", "box", "column", "signboard", "chest of drawers", "counter", "sand", "sink", "skyscraper",
    "fireplace", "refrigerator", "grandstand", "path", "stairs", "runway", "case", "pool table", "pillow",
    "screen door", "stairway", "river", "bridge", "bookcase", "blind", "coffee table", "toilet", "flower",
    "book", "hill", "bench", "countertop", "stove", "palm", "kitchen island", "computer", "swivel chair",
    "boat", "bar", "arcade machine", "hovel", "bus", "towel", "light", "truck", "tower", "chandelier",
    "awning", "streetlight", "booth", "television receiver", "airplane", "dirt track", "apparel", "pole",
    "land", "bannister", "escalator", "ottoman", "bottle", "buffet", "poster", "stage", "van", "ship",
    "fountain", "conveyer belt", "canopy", "washer", "plaything", "swimming pool", "stool", "barrel",
    "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven", "ball", "food", "step", "tank",
    "trade name", "microwave", "pot", "animal", "bicycle", "lake", "dishwasher", "screen", "blanket",
    "sculpture", "hood", "sconce", "vase", "traffic light", "tray", "ashcan", "fan", "pier", "crt screen",
    "plate", "monitor", "bulletin board", "shower", "radiator", "glass", "clock", "flag",
)
SPLIT_FOLDERS = {"train": "training", "val": "validation"}


class ADE20K(PairDataset):
    """``images/{training,validation}/*.jpg`` with ``annotations/.../<same name>.png``."""

    name = "ade20k"
    class_names = ADE20K_CLASSES
    recipe = Recipe(jitter=ScaleJitter(base=(2048, 512)), train_crop=(512, 512), eval_size=(512, 512))

    def find_pairs(self, root: Path, split: str) -> list[tuple[Path, Path]]:
        folder = SPLIT_FOLDERS[split]
        images = require_dir(root / "images" / folder, "ADE20K image")
        labels = root / "annotations" / folder
        pairs = [require_label(image, labels / f"{image.stem}.png") for image in sorted(images.glob("*.jpg"))]
        return require_images(pairs, images, "*.jpg")

    def map_label(self, raw: np.ndarray, path: Path) -> np.ndarray:
        """mmseg's reduce_zero_label: 0 ("other") -> ignore, k -> k - 1; 255 stays ignore."""
        return np.where((raw == 0) | (raw == IGNORE_INDEX), IGNORE_INDEX, raw - 1)
