"""Turn per-channel scores into a keep-set whose MACs land just under a target.

Both pruning methods end here: the bi-level method with its soft masks as scores (a
channel near the threshold is the cheapest to flip), the magnitude baseline with normalised
L1 filter norms. Lowest-scored channels are dropped until the MACs are at or below the
target (ties broken evenly across groups), then the best-scored dropped channels are added
back while they still fit; so the
result is the highest-scored keep-set that a greedy pass finds under the target, at most one
channel's MACs below it. Every group keeps at least ``macs_model.floor(group)`` channels.
"""

from __future__ import annotations

import torch

from edgeprune.pruning.regularizer import MacsModel


def fit_to_target(
    scores: dict[int, torch.Tensor],
    keep: dict[int, torch.Tensor],
    macs_model: MacsModel,
    target_macs: float,
) -> dict[int, torch.Tensor]:
    """Adjust ``keep`` (group -> bool tensor) to the target; returns new bool tensors."""
    keep = {g: k.clone().bool() for g, k in keep.items()}
    for group, kept in keep.items():
        missing = macs_model.floor(group) - int(kept.sum())
        if missing > 0:
            best_dropped = [c for c in torch.argsort(scores[group], descending=True).tolist() if not kept[c]]
            kept[best_dropped[:missing]] = True

    ranked = sorted(
        ((float(scores[g][c]), quantile, g, c) for g in keep for c, quantile in _quantiles(scores[g]).items()),
        key=lambda item: item[:2],
    )
    for _, _, group, channel in ranked:
        if macs_model.kept_macs(keep) <= target_macs:
            break
        if keep[group][channel] and int(keep[group].sum()) > macs_model.floor(group):
            keep[group][channel] = False
    for _, _, group, channel in reversed(ranked):
        if keep[group][channel]:
            continue
        keep[group][channel] = True
        if macs_model.kept_macs(keep) > target_macs:
            keep[group][channel] = False
    return keep


def _quantiles(scores: torch.Tensor) -> dict[int, float]:
    """Each channel's rank within its group, as a fraction: ties in score (masks that all sit at
    1.0, say) are then broken by spreading the cuts evenly over the groups, never by emptying
    the first group before touching the next."""
    order = torch.argsort(scores, stable=True).tolist()
    return {channel: rank / len(order) for rank, channel in enumerate(order)}
