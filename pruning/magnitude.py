"""L1 filter-norm channel scores (Li et al., ICLR 2017).

A channel's score is the L1 norm of the weights that produce it, summed over the group's
producers and divided by the group's largest, so that groups of different layers compare.
The uniform-width baseline keeps each group's best-scored channels; the ``magnitude`` method
is Torch-Pruning's own criterion (``pruning.torch_pruning_baseline``).
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
