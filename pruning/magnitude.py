"""The magnitude baseline: L1 filter-norm channel pruning (Li et al., ICLR 2017).

A channel's importance is the L1 norm of the weights that produce it, summed over the group's
producers and divided by the group's largest, so that groups of different layers compare.
Channels are dropped lowest first until the MACs target is met (``pruning.fit_target``);
the sliced model is then fine-tuned with the same budget the bi-level method gets.
"""

from __future__ import annotations

import torch
from torch import nn

from edgeprune.pruning.coupling import ChannelGraph


def l1_scores(model: nn.Module, graph: ChannelGraph) -> dict[int, torch.Tensor]:
    """Normalised L1 filter norms per prunable group."""
    modules = dict(model.named_modules())
    scores = {}
    for group in graph.groups:
        if not group.prunable:
            continue
        norms = torch.zeros(group.size)
        for name in group.producers:
            weight = modules[name].weight.detach()
            norms += weight.abs().reshape(weight.shape[0], -1).sum(1)
        scores[group.index] = norms / norms.max().clamp_min(1e-12)
    return scores
