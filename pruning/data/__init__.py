"""Segmentation datasets: ``build_dataset(spec, split)`` -> items of (normalized image, label).

``spec`` is ``synthetic[:N]``, ``ade20k:PATH``, ``cityscapes:PATH`` or ``voc:PATH``.
"""

from __future__ import annotations

from pathlib import Path

from edgeprune.base.errors import EdgepruneError
from edgeprune.pruning.data.ade20k import ADE20K
from edgeprune.pruning.data.base import DatasetInfo, PairDataset, SegmentationDataset
from edgeprune.pruning.data.cityscapes import Cityscapes
from edgeprune.pruning.data.synthetic import DEFAULT_TRAIN_IMAGES, Synthetic, render_scene
from edgeprune.pruning.data.transforms import Size
from edgeprune.pruning.data.voc import VOC

FILE_DATASETS: dict[str, type[PairDataset]] = {"ade20k": ADE20K, "cityscapes": Cityscapes, "voc": VOC}
KINDS = ("synthetic", *FILE_DATASETS)

__all__ = ["DatasetInfo", "SegmentationDataset", "build_dataset", "render_scene", "KINDS"]


def build_dataset(spec: str, split: str, crop_size: Size | None = None, seed: int = 0) -> SegmentationDataset:
    """The ``split`` ("train" or "val") of the dataset ``spec`` names.

    ``crop_size`` (H, W) replaces the train crop or the val resize size; ``seed`` seeds the
    train augmentation (and the synthetic scenes).
    """
    kind, sep, arg = spec.partition(":")
    if kind == "synthetic":
        return Synthetic(split, crop_size, seed, num_train=_image_count(spec, arg) if sep else DEFAULT_TRAIN_IMAGES)
    if kind not in FILE_DATASETS:
        raise EdgepruneError(f"{spec}: unknown dataset kind {kind!r} (expected one of {', '.join(KINDS)})")
    if not arg:
        raise EdgepruneError(f"{spec}: {kind} needs its folder, as {kind}:/path/to/dataset")
    return FILE_DATASETS[kind](Path(arg).expanduser(), split, crop_size, seed)


def _image_count(spec: str, arg: str) -> int:
    if not arg.isdigit() or int(arg) <= 0:
        raise EdgepruneError(f"{spec}: expected synthetic:N with N a positive number of train images")
    return int(arg)
