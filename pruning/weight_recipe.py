"""How pruning updates weights: the recipe the checkpoint was trained with, at a fraction of its lr.

Weights must be able to adapt to the masks while the search runs, and the sliced model must
recover without a separate fine-tune; a learning rate far below the one the weights were
trained with (the seed's 1e-4 for checkpoints trained at 0.1) leaves them where they were.
Every method (the bi-level search and each baseline's fine-tune) draws its weight updates from
one ``WeightRecipe`` and one poly schedule over the same number of updates, so they compare at
equal budget.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from edgeprune.pruning.train import TrainConfig, poly_lr

# Large enough for weights to follow the masks, small enough not to undo the training: of the
# fractions benchmarks/prune_recipe.py tried (0.03, 0.1, 0.3), the largest did best.
DEFAULT_LR_FRACTION = 0.3
POLY_POWER = 0.9


@dataclass(frozen=True)
class WeightRecipe:
    lr: float
    weight_decay: float
    momentum: float
    source: str  # where lr came from, for the report

    def lr_at(self, update: int, total_updates: int) -> float:
        """The poly schedule shared by every method: update ``update`` of ``total_updates``."""
        return poly_lr(self.lr, update, total_updates, POLY_POWER)

    def to_json(self) -> dict[str, Any]:
        return {"lr": self.lr, "weight_decay": self.weight_decay, "momentum": self.momentum, "source": self.source}


def weight_recipe(trained_with: dict[str, Any] | None, lr: float | None = None,
                  lr_fraction: float = DEFAULT_LR_FRACTION) -> WeightRecipe:
    """The recipe for a checkpoint trained with the ``TrainConfig`` fields ``trained_with`` (None:
    not trained by edgeprune, so ``TrainConfig``'s defaults); ``lr`` overrides the tied lr."""
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    config = {**defaults, **(trained_with or {})}
    train_lr, weight_decay, momentum = (float(config[k]) for k in ("lr", "weight_decay", "momentum"))
    if lr is not None:
        return WeightRecipe(lr, weight_decay, momentum, "--lr")
    where = "the checkpoint's" if trained_with and "lr" in trained_with else "the default training"
    return WeightRecipe(lr_fraction * train_lr, weight_decay, momentum, f"{lr_fraction:g} x {where} lr {train_lr:g}")
