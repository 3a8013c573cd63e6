"""Weight updates of a (sliced) model on the training set: a run of the shared pruning schedule.

The bi-level search ends here (its last updates, on the sliced model, continue the schedule
where the search left it) and so does every baseline (all of its updates), so each method's
weights see the same number of updates at the same learning rates.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from edgeprune.base.progress import Progress
from edgeprune.pruning.train import BatchPlan, segmentation_loss, train_loader
from edgeprune.pruning.weight_recipe import WeightRecipe


def fine_tune(model: nn.Module, train_set: Dataset, recipe: WeightRecipe, updates: range, total_updates: int, *,
              batch_size: int, seed: int, ignore_index: int, workers: int = 1, label: str = "fine-tune",
              history: list[dict[str, Any]] | None = None, progress_interval_s: float = 10.0) -> None:
    """Updates ``updates`` (indices into the schedule of ``total_updates``), one batch each."""
    if not updates:
        return
    optimizer = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                                weight_decay=recipe.weight_decay)
    # Batches follow the update index, so a method's k-th update reads the same images whatever it is.
    plan = BatchPlan(len(train_set), batch_size, 1, 0, seed)
    model.train()
    with Progress(len(updates), label, interval_s=progress_interval_s) as progress:
        loader = train_loader(train_set, plan, updates.start, updates.stop, workers)
        for update, (images, labels) in zip(updates, loader):
            for group in optimizer.param_groups:
                group["lr"] = recipe.lr_at(update, total_updates)
            loss = segmentation_loss(model(images), labels, ignore_index)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            value = float(loss.detach())
            if history is not None:
                history.append({"update": update + 1, "ce": value})
            progress.update(1, ce=value)
    model.eval()
