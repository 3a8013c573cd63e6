"""Recompute BatchNorm running statistics of a pruned model (no weight changes).

While masks flip, every BatchNorm downstream of a flipped channel sees its input distribution
jump, and its running statistics (an exponential average with momentum 0.1) trail behind; the
final fit to the target flips a few more. Those stale statistics alone cost a pruned model
much of its mIoU (each BatchNorm normalises with another distribution's mean and variance).
Re-estimating them as a plain average over a few training batches (AutoSlim / slimmable
networks do the same) fixes that without training: no weight changes, so the paper's "no
fine-tuning" still holds.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, images: Iterable[torch.Tensor]) -> int:
    """Reset and re-estimate every BatchNorm's running mean/var from ``images``; returns batches used."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    saved = [(m.momentum, m.training) for m in norms]
    was_training = model.training
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over all batches
    model.train()
    count = 0
    try:
        for batch in images:
            model(batch)
            count += 1
    finally:
        for m, (momentum, _) in zip(norms, saved):
            m.momentum = momentum
        model.train(was_training)
    return count
