"""The baselines a user would pick instead: Torch-Pruning's importance criteria and pruner.

``torch_pruning_keep`` runs Torch-Pruning's own ``MetaPruner`` (global ranking over its
dependency groups, its importance normalisation) with one of its criteria: ``magnitude``
(group L1 norm of the weights), ``taylor`` (first-order Taylor, from gradients of the
segmentation loss on a few training batches) or ``bn-scale`` (|gamma| of the BatchNorms, the
Network Slimming criterion). Torch-Pruning prunes to a ratio of channels, not of MACs, so the
ratio is found by bisection: the smallest whose MACs reach the target.

The channels it picks come back as keep-sets of edgeprune's groups (the same layers every other
method may prune; Torch-Pruning ignores the rest), which ``pruning.slicing`` then cuts: a
test checks that this computes what Torch-Pruning's own physical pruning computes.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import torch
import torch_pruning as tp
from torch import nn

from edgeprune.base.errors import EdgepruneError
from edgeprune.pruning.coupling import ChannelGraph
from edgeprune.pruning.coupling.ops import WEIGHTED
from edgeprune.pruning.regularizer import MacsModel

CRITERIA = ("magnitude", "taylor", "bn-scale")
BISECTION_STEPS = 24


def importance(criterion: str) -> tp.importance.Importance:
    if criterion == "magnitude":
        return tp.importance.GroupMagnitudeImportance(p=1)
    if criterion == "taylor":
        return tp.importance.GroupTaylorImportance()
    if criterion == "bn-scale":
        return tp.importance.BNScaleImportance()
    raise ValueError(f"unknown Torch-Pruning criterion {criterion!r} (one of {', '.join(CRITERIA)})")


def torch_pruning_keep(model: nn.Module, graph: ChannelGraph, example: torch.Tensor, criterion: str,
                       macs_model: MacsModel, target_macs: float,
                       gradient_batches: Iterable[tuple[torch.Tensor, torch.Tensor]] = (),
                       loss_fn=None) -> dict[int, torch.Tensor]:
    """Keep-sets (group -> bool) that Torch-Pruning's pruner chooses under ``criterion`` at the
    MACs target; ``gradient_batches`` and ``loss_fn`` feed the Taylor criterion."""
    if criterion == "taylor":
        model.zero_grad(set_to_none=True)
        model.train()
        for images, labels in gradient_batches:
            loss_fn(model(images), labels).backward()
    model.eval()
    try:
        low, high = 0.0, 1.0 - macs_model.min_keep
        best = keep_at_ratio(model, graph, example, criterion, high, macs_model.min_keep)
        if macs_model.kept_macs(best) > target_macs:
            raise EdgepruneError(f"Torch-Pruning ({criterion}) cannot reach {target_macs / 1e9:.4g} GMACs on this model")
        for _ in range(BISECTION_STEPS):
            middle = (low + high) / 2
            keep = keep_at_ratio(model, graph, example, criterion, middle, macs_model.min_keep)
            if macs_model.kept_macs(keep) <= target_macs:
                best, high = keep, middle
            else:
                low = middle
        return best
    finally:
        model.zero_grad(set_to_none=True)


def keep_at_ratio(model: nn.Module, graph: ChannelGraph, example: torch.Tensor, criterion: str, ratio: float,
             min_keep: float) -> dict[int, torch.Tensor]:
    """What one global Torch-Pruning step at ``ratio`` would remove, without removing it."""
    names = {module: name for name, module in model.named_modules()}
    owner = {}  # module name -> the edgeprune group whose output channels it produces
    in_groups = set()
    for group in graph.groups:
        if group.prunable:
            owner.update({name: group.index for name in group.producers})
            in_groups.update(group.producers + group.members + group.mask_points)
    ignored = [m for n, m in model.named_modules() if isinstance(m, WEIGHTED) and n not in in_groups]
    keep = {g.index: torch.ones(g.size, dtype=torch.bool) for g in graph.groups if g.prunable}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pruner = tp.pruner.MetaPruner(model, example, importance=importance(criterion), pruning_ratio=ratio,
                                      global_pruning=True, max_pruning_ratio=1.0 - min_keep, ignored_layers=ignored)
        for tp_group in pruner.step(interactive=True):
            for item in tp_group.items:
                name = names.get(item.dep.target.module)
                if name in owner and pruner.DG.is_out_channel_pruning_fn(item.dep.handler):
                    keep[owner[name]][list(item.idxs)] = False
                    break
    return keep
