"""The MACs regularizer of the seed paper (Eq. 4-5), differentiable in the soft masks.

``MACs(b)`` sums, over every conv and linear layer, ``pairs * kept_out * kept_in / groups``
(``pairs * kept`` for a depth-wise conv): a layer gets cheaper when its own output channels
are pruned AND when the channels it reads are. Kept counts come from the binary masks
through the straight-through estimator, so ``dMACs/ds_c`` is the MACs channel ``c`` costs.
Attention matmuls, whose sizes no prunable group changes, are a constant.

Eq. 5 squares a difference of raw MACs (about 1e18 for these models), which makes beta
meaningless across model sizes. We square the *relative* error instead::

    L_reg = ((MACs(b) - C) / C)^2

so a model 10% over its target pays 0.01 whatever its size, and the paper's beta = 0.01
weighs it against the cross entropy the same way for a 0.1-GMAC TopFormer-Tiny and a
9.5-GMAC DeepLabV3+. Its gradient on one channel's mask is ``2 * error * (channel cost / C)``:
expensive channels (high-resolution layers) are pushed hardest, as in Eq. 5. Measured on a
trained TopFormer-Tiny, that push is about 1e-5 per average channel against cross-entropy
gradients of about 1e-3, so the masks follow the loss and the regularizer is a steady drift
toward the target; ``pruning.fit_target`` settles the last few channels.
"""

from __future__ import annotations

import math

import torch

from edgeprune.errors import EdgepruneError
from pruning.coupling import ChannelGraph


class MacsModel:
    """MACs of a model as a function of the kept channel count of each prunable group."""

    def __init__(self, graph: ChannelGraph, total_macs: int, min_keep: float = 0.0) -> None:
        """``min_keep``: the smallest fraction of each group's channels pruning may leave (at least one)."""
        if not 0.0 <= min_keep <= 1.0:
            raise EdgepruneError(f"--min-keep must be between 0 and 1, got {min_keep}")
        self.graph = graph
        self.min_keep = min_keep
        self.sizes = {g.index: g.size for g in graph.groups}
        self.prunable = {g.index for g in graph.groups if g.prunable}
        self.fixed_macs = 0
        full = self.macs({})
        self.fixed_macs = int(total_macs) - int(full)
        if self.fixed_macs < 0:
            raise ValueError(f"conv/linear MACs {int(full)} exceed the model's total {total_macs}")

    def macs(self, counts: dict[int, torch.Tensor | float]) -> torch.Tensor:
        """Conv/linear MACs with ``counts[g]`` channels kept in group ``g`` (others whole), plus the fixed part."""

        def kept(group: int | None, size: int) -> torch.Tensor | float:
            if group is None or group not in self.prunable:
                return float(size)
            return counts.get(group, float(self.sizes[group]))

        total: torch.Tensor | float = float(self.fixed_macs)
        for site in self.graph.sites:
            out = kept(site.out_group, site.out_channels)
            if site.depthwise:
                total = total + site.macs_per_pair * out
                continue
            inp = sum(kept(group, size) for group, size in site.in_parts)
            total = total + site.macs_per_pair * out * inp / site.groups
        return torch.as_tensor(total, dtype=torch.float64) if not isinstance(total, torch.Tensor) else total

    def full_macs(self) -> int:
        return int(self.macs({}))

    def floor(self, group: int) -> int:
        """The fewest channels group ``group`` may keep."""
        return max(1, math.ceil(self.min_keep * self.sizes[group]))

    def min_macs(self) -> int:
        """The fewest MACs pruning can reach: every prunable group at its floor."""
        return int(self.macs({g: float(self.floor(g)) for g in self.prunable}))

    def check_target(self, target: float, source: str = "--target-gmacs") -> None:
        low, high = self.min_macs(), self.full_macs()
        if not low < target <= high:
            raise EdgepruneError(
                f"{source} {target / 1e9:.4g} is out of reach: this model and prunable set span "
                f"{low / 1e9:.4g} to {high / 1e9:.4g} GMACs"
            )


class MacsRegularizer:
    """``beta * ((MACs(b) - C) / C)^2`` (the seed paper's Eq. 4-5, relative; see module doc)."""

    def __init__(self, macs_model: MacsModel, target_macs: float, beta: float = 0.01) -> None:
        macs_model.check_target(target_macs)
        self.macs_model = macs_model
        self.target = float(target_macs)
        self.beta = beta

    def __call__(self, counts: dict[int, torch.Tensor]) -> torch.Tensor:
        relative = (self.macs_model.macs(counts) - self.target) / self.target
        return self.beta * relative**2
