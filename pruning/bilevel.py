"""Bi-level optimization of weights and soft masks with implicit gradients (seed paper, section 4).

Inner problem (Eq. 7): ``w* = argmin_w CE(w, s) + ||w||^2 / (2 lambda)``, approximated by a
few SGD steps under a fixed mask. The steps use the recipe the checkpoint was trained with
(its weight decay, a learning rate tied to its own): ``lambda`` is not applied as a weight
decay. Its role in Eq. 10-15 is the scale of the inverse Hessian, ``(grad^2 L + I/lambda)^-1
~ lambda I``: how far the inner solution moves per unit of gradient. A decay of ``1/lambda``
(10 for the paper's 0.1) on every weight would shrink an unnormalised classifier to a
fraction of itself within a few hundred steps.
Outer problem (Eq. 6): ``min_s L_m(w*, s) = CE + beta * L_reg(MACs(b))``, one step per
iteration with the implicit gradient of Eq. 15::

    dL_m/ds = grad_s L_m  -  lambda * b * (grad_w L_m)^2

where the second term is accumulated over all weights of each channel (the paper's
"accumulate the gradients of all weights in each channel"). Eq. 14 is what makes this
cheap: ``grad_{w_b} L(w_b)`` equals ``grad_w L_m`` where ``b = 1`` and 0 elsewhere, so no
second copy of the weights is needed: one backward pass gives both gradients. With
``implicit=False`` the second term is dropped (the ablation of the paper's Table 3).

Units of lambda: the paper's value (0.1) is tied to its models, losses and data; in ours the
implicit term it gives is orders of magnitude below the cross-entropy gradient's noise and
changes nothing. ``calibrate_lambda`` therefore sets lambda from a dimensionless weight
``rho``: on the first batches, the implicit term's mean over the kept channels is ``rho``
times the mean magnitude of the cross-entropy's own mask gradient.

How hard the regularizer pushes each channel (``push``): Eq. 5 pushes a channel in proportion
to the MACs it costs (``"macs"``), so at our budgets a high-resolution channel, many times an
average one's cost, falls before the loss has any say, and the search cuts the early groups
to their floor while keeping the cheap late ones whole. ``"even"`` (the default) gives every
channel the mean push, with the sign of its own: the ramped MACs target still says how many
channels go, and the cross-entropy and implicit terms say which
(``benchmarks/prune_ablation.py`` runs both).

Mask steps move at most ``max_flips`` channels from kept to pruned: the regularizer's push is
the same for every channel of a group, so without a bound whole groups cross the threshold
together in the first steps, chosen by their cost rather than by the loss.

The masks are ``ChannelMasks`` (one mask per channel group) or any ``MaskUnits`` family with
its own weights per mask entry, such as ``pruning.column_masks.ColumnMasks``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from edgeprune.pruning.masks import ChannelMasks
from edgeprune.pruning.regularizer import MacsRegularizer

# How far above the threshold a mask is put when it is held back or lifted to a floor.
FLIP_MARGIN = 0.05
PUSHES = ("even", "macs")


@dataclass
class BilevelSettings:
    weight_lr: float = 0.01
    weight_decay: float = 1e-4
    momentum: float = 0.9
    mask_lr: float = 2.0
    mask_momentum: float = 0.9
    lam: float = 0.1
    implicit: bool = True
    push: str = "even"  # "even": every channel the mean regularizer push; "macs": Eq. 5's, by cost
    max_flips: int | None = None  # channels a mask step may prune at most; None: unbounded


def channel_weights(model: nn.Module, masks: ChannelMasks) -> dict[int, list[torch.Tensor]]:
    """The parameters "in each channel" of every prunable group: dim 0 of the weights and biases of
    its producers, its members (depth-wise convs, BatchNorms) and its mask points."""
    modules = dict(model.named_modules())
    out: dict[int, list[torch.Tensor]] = {}
    for group in masks.graph.groups:
        if not group.prunable:
            continue
        params = []
        for name in dict.fromkeys(group.producers + group.members + group.mask_points):
            module = modules[name]
            for param in (getattr(module, "weight", None), getattr(module, "bias", None)):
                if isinstance(param, torch.Tensor) and param.requires_grad and param.shape[0] == group.size:
                    params.append(param)
        out[group.index] = params
    return out


class MaskUnits(Protocol):
    """What the pruner needs of a mask family beyond ``soft``, ``tau``, ``binary`` and ``kept_counts``."""

    def unit_weights(self, model: nn.Module) -> dict:
        """Mask key -> the parameters its entries gate."""

    def unit_sum(self, key, values: torch.Tensor) -> torch.Tensor:
        """``values`` (shaped like one of those parameters) summed over each mask entry's share: mask-shaped."""

    def spread(self, key, keep: torch.Tensor, param: torch.Tensor) -> torch.Tensor:
        """A mask-shaped ``keep`` as a factor broadcastable to ``param``."""

    def floor(self, key) -> int:
        """Entries each row of the mask (a 1-d mask is one row) keeps at least."""


class ChannelUnits:
    """``ChannelMasks`` as ``MaskUnits``: an entry per channel, its weights along dim 0."""

    def __init__(self, masks: ChannelMasks, regularizer: MacsRegularizer | None = None) -> None:
        self.masks = masks
        self.regularizer = regularizer

    def unit_weights(self, model: nn.Module) -> dict[int, list[torch.Tensor]]:
        return channel_weights(model, self.masks)

    def unit_sum(self, key, values: torch.Tensor) -> torch.Tensor:
        return values.reshape(values.shape[0], -1).sum(1)

    def spread(self, key, keep: torch.Tensor, param: torch.Tensor) -> torch.Tensor:
        return keep.view([-1] + [1] * (param.dim() - 1))

    def floor(self, key) -> int:
        return self.regularizer.macs_model.floor(int(key))


def mask_units(masks: ChannelMasks | MaskUnits, regularizer: MacsRegularizer | None = None) -> MaskUnits:
    """The ``MaskUnits`` view of ``masks`` (``ChannelMasks`` take their floors from ``regularizer``)."""
    return ChannelUnits(masks, regularizer) if isinstance(masks, ChannelMasks) else masks


def implicit_term(masks: ChannelMasks | MaskUnits, per_channel: dict, lam: float) -> dict:
    """``lambda * b * sum_{w in channel} (grad_w L_m)^2`` per group, from the ``.grad`` of the weights."""
    units = mask_units(masks)
    terms = {}
    for group, params in per_channel.items():
        squares = torch.zeros(masks.soft[str(group)].shape)
        for param in params:
            if param.grad is not None:
                squares += units.unit_sum(group, param.grad.detach().pow(2))
        terms[group] = lam * masks.binary(group).detach() * squares
    return terms


class BilevelPruner:
    """Alternates weight steps under fixed masks with one implicit-gradient mask step."""

    def __init__(
        self,
        model: nn.Module,
        masks: ChannelMasks | MaskUnits,
        regularizer: MacsRegularizer | Callable[[dict], torch.Tensor],
        loss_fn,
        settings: BilevelSettings,
    ) -> None:
        if settings.push not in PUSHES:
            raise ValueError(f"push must be one of {PUSHES}, got {settings.push!r}")
        self.model = model
        self.masks = masks
        self.regularizer = regularizer
        self.loss_fn = loss_fn
        self.settings = settings
        self.units = mask_units(masks, regularizer)
        self.per_channel = self.units.unit_weights(model)
        self.weight_optimizer = torch.optim.SGD(
            model.parameters(), lr=settings.weight_lr, momentum=settings.momentum
        )
        # Momentum averages the cross-entropy part of the mask gradient over ~10 steps, whose
        # step-to-step noise is otherwise as large as its signal.
        self.mask_optimizer = torch.optim.SGD(masks.parameters(), lr=settings.mask_lr, momentum=settings.mask_momentum)

    def set_lr(self, weight_lr: float, mask_lr: float) -> None:
        for group in self.weight_optimizer.param_groups:
            group["lr"] = weight_lr
        for group in self.mask_optimizer.param_groups:
            group["lr"] = mask_lr

    def weight_step(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        """One SGD step of the inner problem; the masks do not move."""
        self.masks.requires_grad_(False)
        try:
            loss = self.loss_fn(self.model(images), labels)
            self.weight_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self._keep_pruned_weights()  # also applies the 1/lambda weight decay
            self.weight_optimizer.step()
        finally:
            self.masks.requires_grad_(True)
        return float(loss.detach())

    def mask_step(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        """One step of the outer problem with the gradient of Eq. 15; the weights do not move."""
        ce = self.loss_fn(self.model(images), labels)
        reg = self.regularizer(self.masks.kept_counts())
        softs = list(self.masks.soft.values())
        pushes = torch.autograd.grad(reg, softs, allow_unused=True) if reg.requires_grad else [None] * len(softs)
        pushes = [torch.zeros_like(s) if g is None else g for g, s in zip(pushes, softs)]
        if self.settings.push == "even":
            mean = sum(float(g.abs().sum()) for g in pushes) / sum(g.numel() for g in pushes)
            pushes = [torch.sign(g) * mean for g in pushes]
        self.model.zero_grad(set_to_none=True)
        self.mask_optimizer.zero_grad(set_to_none=True)
        ce.backward()
        for soft, push in zip(softs, pushes):
            soft.grad = push if soft.grad is None else soft.grad + push
        if self.settings.implicit:
            for group, term in implicit_term(self.masks, self.per_channel, self.settings.lam).items():
                self.masks.soft[str(group)].grad -= term
        was_kept = {key: soft.detach() > self.masks.tau for key, soft in self.masks.soft.items()}
        self.mask_optimizer.step()
        with torch.no_grad():
            for key, soft in self.masks.soft.items():
                # Keeping s in [0, 1] keeps every pruned channel within 0.5 of the threshold, so it
                # can recover as soon as its gradient turns, however long it has been off.
                soft.clamp_(0.0, 1.0)
            self._bound_flips(was_kept)
            for key, soft in self.masks.soft.items():
                # A group below its floor (one channel at least: none would cut the network in
                # two) gets its best masks lifted just over the threshold (per row of a 2-d mask).
                rows = soft.view(-1, soft.shape[-1])
                best = torch.argsort(rows, dim=1, descending=True)[:, : self.units.floor(key)]
                rows.scatter_(1, best, rows.gather(1, best).clamp_min(self.masks.tau + FLIP_MARGIN))
        self.model.zero_grad(set_to_none=True)
        return {"ce": float(ce.detach()), "reg": float(reg.detach())}

    def _bound_flips(self, was_kept: dict[str, torch.Tensor]) -> None:
        """Of the channels this step pruned, let the ``max_flips`` lowest masks go; the rest wait
        just above the threshold (their momentum is kept, so they go next if still pushed)."""
        limit = self.settings.max_flips
        if limit is None:
            return
        flipped = [(soft, was_kept[key] & (soft <= self.masks.tau)) for key, soft in self.masks.soft.items()]
        values = torch.cat([soft[mask] for soft, mask in flipped])
        if values.numel() <= limit:
            return
        # Exactly ``limit`` go: ties (masks clamped at 0 by one big step) go in channel order.
        go = torch.zeros(values.numel(), dtype=torch.bool)
        go[torch.argsort(values, stable=True)[:limit]] = True
        offset = 0
        for soft, mask in flipped:
            count = int(mask.sum())
            held = mask.clone()
            held[mask] = ~go[offset : offset + count]
            soft[held] = self.masks.tau + FLIP_MARGIN
            offset += count

    def _keep_pruned_weights(self) -> None:
        """Apply the training weight decay and freeze the weights of pruned channels.

        A pruned channel's loss gradient is already zero (its output is zero), but weight decay
        and momentum would still move its weights, and the paper's pruned channels must come back
        exactly as they were: so decay is applied here, per channel (on every parameter, as
        ``pruning.train`` applies it), and a pruned channel's gradient and momentum are zeroed.
        """
        decay = self.settings.weight_decay
        in_groups = set()
        for group, params in self.per_channel.items():
            keep = self.masks.binary(group).detach()
            for param in params:
                in_groups.add(id(param))
                factor = self.units.spread(group, keep, param)
                grad = param.grad if param.grad is not None else torch.zeros_like(param)
                param.grad = (grad + decay * param.detach()) * factor
                buffer = self.weight_optimizer.state.get(param, {}).get("momentum_buffer")
                if buffer is not None:
                    buffer.mul_(factor)
        for param in self.model.parameters():
            if id(param) not in in_groups and param.grad is not None:
                param.grad += decay * param.detach()


def calibrate_lambda(pruner: BilevelPruner, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], rho: float) -> float:
    """The lambda at which the implicit term's mean over kept channels is ``rho`` times the mean
    magnitude of the cross-entropy's mask gradient, both averaged over ``batches``."""
    direct, implicit = 0.0, 0.0
    masks = pruner.masks
    for images, labels in batches:
        ce = pruner.loss_fn(pruner.model(images), labels)
        pruner.model.zero_grad(set_to_none=True)
        masks.zero_grad(set_to_none=True)
        ce.backward()
        for group, term in implicit_term(masks, pruner.per_channel, 1.0).items():
            kept = masks.binary(group).detach() > 0
            direct += float(masks.soft[str(group)].grad[kept].abs().sum())
            implicit += float(term[kept].sum())
    pruner.model.zero_grad(set_to_none=True)
    masks.zero_grad(set_to_none=True)
    if implicit <= 0.0:
        return 0.0
    return rho * direct / implicit
