"""The uniform-width baseline: every prunable group scaled by one factor to the MACs target.

What a user does by hand with a width multiplier, but on a trained checkpoint: group ``g``
keeps ``round(f * size_g)`` channels (at least its floor), the ones with the largest L1
filter norms, with ``f`` the largest factor whose MACs are at or under the target.
"""

from __future__ import annotations

import torch
from torch import nn

from edgeprune.pruning.coupling import ChannelGraph
from edgeprune.pruning.magnitude import l1_scores
from edgeprune.pruning.regularizer import MacsModel

BISECTION_STEPS = 30


def uniform_keep(model: nn.Module, graph: ChannelGraph, macs_model: MacsModel, target_macs: float) -> dict[int, torch.Tensor]:
    """Keep-sets (group -> bool) of one width factor, the largest under ``target_macs``."""

    def counts(factor: float) -> dict[int, int]:
        return {g: max(macs_model.floor(g), round(factor * macs_model.sizes[g])) for g in macs_model.prunable}

    low, high = 0.0, 1.0
    for _ in range(BISECTION_STEPS):
        middle = (low + high) / 2
        if float(macs_model.macs({g: float(c) for g, c in counts(middle).items()})) <= target_macs:
            low = middle
        else:
            high = middle
    keep = {}
    for group, scores in l1_scores(model, graph).items():
        kept = torch.zeros(scores.numel(), dtype=torch.bool)
        kept[torch.argsort(scores, descending=True)[: counts(low)[group]]] = True
        keep[group] = kept
    return keep
