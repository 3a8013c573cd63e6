"""mIoU of a segmentation model on a dataset split, sharded over data-parallel ranks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from edgeprune.pruning.metrics import ConfusionMatrix


def upsample_logits(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize stride-s logits to the label size, as mmseg and TopFormer do before loss and argmax."""
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    dataset: Dataset,
    num_classes: int,
    ignore_index: int = 255,
    batch_size: int = 4,
    limit: int | None = None,
    rank: int = 0,
    world_size: int = 1,
    workers: int = 0,
) -> ConfusionMatrix:
    """Accumulate the confusion matrix of ``model`` over (the first ``limit`` items of) ``dataset``.

    Each rank evaluates every ``world_size``-th item; the matrices are summed across ranks, so
    every rank returns the same, whole-dataset result.
    """
    count = len(dataset) if limit is None else min(limit, len(dataset))
    shard = Subset(dataset, list(range(rank, count, world_size)))
    loader = DataLoader(shard, batch_size=batch_size, shuffle=False, num_workers=workers)
    was_training = model.training
    model.eval()
    matrix = ConfusionMatrix(num_classes, ignore_index)
    try:
        for images, labels in loader:
            logits = upsample_logits(model(images), labels.shape[-2:])
            matrix.update(logits.argmax(1), labels)
    finally:
        model.train(was_training)
    matrix.all_reduce()
    return matrix
