"""Turn per-channel scores into a keep-set whose MACs land just under a target.

Both pruning methods end here: the bi-level method with its soft masks as scores (a
channel near the threshold is the cheapest to flip), the magnitude baseline with normalised
L1 filter norms. Lowest-scored channels are dropped until the MACs are at or below the
target, then the best-scored dropped channels are added back while they still fit; so the
result is the highest-scored keep-set that a greedy pass finds under the target, at most one
channel's MACs below it. Every group keeps at least one channel.
"""

from __future__ import annotations

import torch

from pruning.regularizer import MacsModel


def fit_to_target(
    scores: dict[int, torch.Tensor],
    keep: dict[int, torch.Tensor],
    macs_model: MacsModel,
    target_macs: float,
) -> dict[int, torch.Tensor]:
    """Adjust ``keep`` (group -> bool tensor) to the target; returns new bool tensors."""
    keep = {g: k.clone().bool() for g, k in keep.items()}
    for group, kept in keep.items():
        if not kept.any():
            kept[int(torch.argmax(scores[group]))] = True

    def current() -> float:
        return float(macs_model.macs({g: float(k.sum()) for g, k in keep.items()}))

    ranked = sorted(
        ((float(scores[g][c]), g, c) for g in keep for c in range(keep[g].numel())),
        key=lambda item: item[0],
    )
    for _, group, channel in ranked:
        if current() <= target_macs:
            break
        if keep[group][channel] and int(keep[group].sum()) > 1:
            keep[group][channel] = False
    for _, group, channel in reversed(ranked):
        if keep[group][channel]:
            continue
        keep[group][channel] = True
        if current() > target_macs:
            keep[group][channel] = False
    return keep
