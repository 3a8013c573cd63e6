"""The search's MACs target over time: from the full model down to the target, then held.

The seed paper regularizes toward the final target from the first step. At our budgets the
regularizer then outweighs the cross-entropy part of the mask gradient by an order of
magnitude and the masks fall cost-first within a few steps, before the loss has said which
channels matter. A target that descends linearly over ``ramp_iters`` iterations keeps the
MACs just above the current target, where the regularizer's pull is small, so the order in
which channels go is the loss's; ``flip_budget`` bounds the per-step rate to match.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class TargetRamp:
    full_macs: float
    target_macs: float
    ramp_iters: int

    def at(self, iteration: int) -> float:
        """The target of (0-based) search iteration ``iteration``: the final one from ``ramp_iters - 1`` on."""
        done = min(1.0, (iteration + 1) / max(1, self.ramp_iters))
        return self.full_macs - done * (self.full_macs - self.target_macs)

    def flip_budget(self, prunable_channels: int, rate_margin: float = 2.0) -> int:
        """Channels one mask step may prune: ``rate_margin`` times the average rate at which the ramp
        removes channels (estimated as the prunable channels times the fraction of MACs removed)."""
        removed = prunable_channels * (1.0 - self.target_macs / self.full_macs)
        return max(1, math.ceil(rate_margin * removed / max(1, self.ramp_iters)))
