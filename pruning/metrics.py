"""Mean intersection-over-union over a whole dataset split, as the seed paper's Appendix E.

``mIoU = (1/n) * sum_i |P_overlap^i| / |P_union^i|``: for each class ``i`` the pixels where
prediction and ground truth are both ``i``, over the pixels where either is ``i``. The
counts come from one confusion matrix summed over every image of the split (as mmseg and
the official TopFormer evaluation do), not from per-image IoUs averaged afterwards. Pixels
whose label is ``ignore_index`` (255) are dropped, whatever was predicted there; everywhere
else the prediction may be any class.

The mean runs over the classes with a non-empty union: a class absent from both the ground
truth and the predictions of the whole split has IoU 0/0, which says nothing about the
model, so it is left out (mmseg's ``nanmean``, the convention behind TopFormer's published
numbers). A class that is only predicted has IoU 0 and counts.
"""

from __future__ import annotations

import torch

from edgeprune.pruning.distributed import all_reduce_sum


class ConfusionMatrix:
    """Pixel counts ``matrix[target, pred]`` accumulated over many batches (kept on the CPU)."""

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch: ``pred`` class ids ``[N, H, W]`` or logits ``[N, C, H, W]``, ``target`` ``[N, H, W]``."""
        if pred.is_floating_point():
            expected = (*target.shape[:1], self.num_classes, *target.shape[1:])
            if pred.shape != expected:
                raise ValueError(
                    f"logits shape {tuple(pred.shape)} does not match target shape {tuple(target.shape)} "
                    f"with {self.num_classes} classes (expected {expected})"
                )
            pred = pred.argmax(1)
        if pred.shape != target.shape:
            raise ValueError(f"prediction shape {tuple(pred.shape)} does not match target shape {tuple(target.shape)}")
        target = target.reshape(-1).long()
        pred = pred.reshape(-1).long()
        keep = target != self.ignore_index
        target, pred = target[keep], pred[keep]
        _check_range("target", target, self.num_classes, self.ignore_index)
        _check_range("prediction", pred, self.num_classes)
        n = self.num_classes
        counts = torch.bincount(target * n + pred, minlength=n * n)
        self.matrix += counts.reshape(n, n).cpu()

    def merge(self, other: ConfusionMatrix) -> None:
        """Add another matrix's counts (same classes and ignore index) to this one."""
        if (other.num_classes, other.ignore_index) != (self.num_classes, self.ignore_index):
            raise ValueError(
                f"cannot merge a {other.num_classes}-class matrix (ignore {other.ignore_index}) into a "
                f"{self.num_classes}-class one (ignore {self.ignore_index})"
            )
        self.matrix += other.matrix

    def all_reduce(self) -> None:
        """Sum the counts over the ranks of the process group, if one is initialized."""
        all_reduce_sum(self.matrix)

    def iou(self) -> torch.Tensor:
        """Per-class IoU (float64); NaN for a class with an empty union."""
        matrix = self.matrix.double()
        overlap = matrix.diag()
        union = matrix.sum(0) + matrix.sum(1) - overlap
        return torch.where(union > 0, overlap / union, torch.full_like(overlap, float("nan")))

    def miou(self) -> float:
        """Mean IoU over the classes with a non-empty union; NaN before any pixel is counted."""
        return self.iou().nanmean().item()

    def pixel_accuracy(self) -> float:
        """Correctly predicted pixels over counted (non-ignored) pixels; NaN before any."""
        total = self.matrix.sum().item()
        return self.matrix.diag().sum().item() / total if total else float("nan")

    def reset(self) -> None:
        self.matrix.zero_()


def _check_range(what: str, values: torch.Tensor, num_classes: int, ignore_index: int | None = None) -> None:
    bad = values[(values < 0) | (values >= num_classes)]
    if bad.numel():
        found = bad.unique().tolist()
        shown = ", ".join(map(str, found[:10])) + (", ..." if len(found) > 10 else "")
        allowed = f"[0, {num_classes})" + ("" if ignore_index is None else f" or {ignore_index}")
        raise ValueError(f"{what} values {shown} are outside {allowed}")
