"""Soft channel masks with a straight-through estimator (seed paper, section 3.1-3.2).

Each prunable channel group ``g`` gets a soft mask ``s_g`` (the paper's depth-wise 1x1 conv
after the conv, Eq. 1). The forward pass multiplies the group's channels by the binary mask
``b_g = 1[s_g > tau]`` (Eq. 2); the backward pass hands the gradient of ``b_g`` straight to
``s_g`` (Eq. 3). A channel with ``b = 0`` is exactly zero downstream, so the gradient of its
weights is zero too: the weights are kept, not decayed by the loss, and the channel comes
back as it was when ``s`` crosses ``tau`` again.

The masks multiply the outputs of the group's *mask points* (the BatchNorm after a conv, or
the conv itself; see ``pruning.coupling``) through forward hooks, so the model's own code
is untouched and any traceable conv net can be masked.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from edgeprune.pruning.coupling import ChannelGraph

TAU = 0.5


class _BinarizeSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx: object, soft: torch.Tensor, tau: float) -> torch.Tensor:
        return (soft > tau).to(soft.dtype)

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad, None


def binarize(soft: torch.Tensor, tau: float = TAU) -> torch.Tensor:
    """``1[soft > tau]`` in the forward pass, identity gradient in the backward pass."""
    return _BinarizeSTE.apply(soft, tau)


class ChannelMasks(nn.Module):
    """The soft masks of every prunable group of a ``ChannelGraph``, hooked into a model."""

    def __init__(self, graph: ChannelGraph, init: float = 1.0, tau: float = TAU) -> None:
        super().__init__()
        self.graph = graph
        self.tau = tau
        self.soft = nn.ParameterDict(
            {str(g.index): nn.Parameter(torch.full((g.size,), float(init))) for g in graph.groups if g.prunable}
        )
        self._handles: list[RemovableHandle] = []

    @property
    def group_indices(self) -> list[int]:
        return [int(k) for k in self.soft]

    def binary(self, group: int) -> torch.Tensor:
        return binarize(self.soft[str(group)], self.tau)

    def kept_counts(self) -> dict[int, torch.Tensor]:
        """Kept channels per group, differentiable in ``s`` through the STE."""
        return {g: self.binary(g).sum() for g in self.group_indices}

    def kept_indices(self) -> dict[int, torch.Tensor]:
        return {g: torch.nonzero(self.soft[str(g)].detach() > self.tau).flatten() for g in self.group_indices}

    def attach(self, model: nn.Module) -> "ChannelMasks":
        """Multiply every mask point's output by its group's binary mask from now on."""
        self.detach()
        modules = dict(model.named_modules())
        for group in self.graph.groups:
            if not group.prunable:
                continue
            for name in group.mask_points:
                module = modules[name]
                channel_dim = -1 if isinstance(module, nn.Linear) else 1
                self._handles.append(module.register_forward_hook(self._hook(group.index, channel_dim)))
        return self

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _hook(self, group: int, channel_dim: int):
        def apply_mask(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> torch.Tensor:
            mask = self.binary(group)
            shape = [1] * output.dim()
            shape[channel_dim] = mask.numel()
            return output * mask.view(shape)

        return apply_mask
