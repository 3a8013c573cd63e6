"""The MACs regularizer of the seed paper (Eq. 4-5), differentiable in the soft masks.

``MACs(b)`` sums, over every conv and linear layer, ``pairs * kept_out * kept_in / groups``
(``pairs * kept`` for a depth-wise conv): a layer gets cheaper when its own output channels
are pruned AND when the channels it reads are. Kept counts come from the binary masks
through the straight-through estimator, so ``dMACs/ds_c`` is the MACs channel ``c`` costs.
Attention matmuls, whose sizes no prunable group changes, are a constant.

Eq. 5 squares a difference of raw MACs (about 1e18 for these models), which makes beta
meaningless across model sizes. We measure MACs in units of ``m``, the average cost of one
prunable channel (full MACs / prunable channels), and divide by the target in those units::

    L_reg = (MACs(b) - C)^2 / (C * m)  =  (C / m) * ((MACs(b) - C) / C)^2

Then ``dL_reg/ds_c = 2 * (relative error) * (cost of channel c / m)``: a model 50% over its
target pushes an average channel's mask down by ``beta`` per unit of mask learning rate,
whatever the model's size, and expensive (high-resolution) channels harder, as in Eq. 5
(``pruning.bilevel``'s default ``push`` then evens the push out across channels).
With this scale the drift toward the target outweighs the step-to-step noise of the
cross-entropy gradient (as observed on a trained TopFormer supernet), so the masks themselves
reach the target and ``pruning.fit_target`` only tidies up. The plain relative error drifts
``C / m`` times slower (of the order of the prunable channel count): the masks random-walk on
the noise, and the final fit has to flip so many channels that it leaves a trivial model.
"""

from __future__ import annotations

import math

import torch

from edgeprune.base.errors import EdgepruneError
from edgeprune.pruning.coupling import ChannelGraph


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

    def kept_macs(self, keep: dict[int, torch.Tensor]) -> float:
        """MACs with the channels of each group's keep-set (group -> bool tensor) kept."""
        return float(self.macs({g: float(k.sum()) for g, k in keep.items()}))

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
    """``beta * (MACs(b) - C)^2 / (C * m)`` (the seed paper's Eq. 4-5, normalised; see module doc)."""

    def __init__(self, macs_model: MacsModel, target_macs: float, beta: float = 0.01) -> None:
        macs_model.check_target(target_macs)
        self.macs_model = macs_model
        self.target = float(target_macs)
        self.beta = beta
        channels = sum(macs_model.sizes[g] for g in macs_model.prunable)
        # Fixed by the final target: a ramped target (``retarget``) changes where the masks are
        # pulled, not how hard a given relative error pulls them.
        self.scale = self.target / (macs_model.full_macs() / channels)

    def retarget(self, target_macs: float) -> None:
        """Pull toward ``target_macs`` from now on (a point of a ramp from the full MACs down)."""
        if not self.macs_model.min_macs() < target_macs <= self.macs_model.full_macs():
            raise ValueError(f"ramp target {target_macs:.4g} outside the reachable MACs")
        self.target = float(target_macs)

    def __call__(self, counts: dict[int, torch.Tensor]) -> torch.Tensor:
        relative = (self.macs_model.macs(counts) - self.target) / self.target
        return self.beta * self.scale * relative**2
