"""The physical slice: turn kept-channel sets into a smaller dense model.

For every channel group that loses channels, the group's producers lose output channels,
its members (BatchNorms, depth-wise convs) lose channels, and each consumer loses the
input channels at the group's offset. ``pruning.coupling`` only declares a group
prunable when its pruned channels are exactly zero wherever a consumer reads them in the
masked model, so the slice computes exactly what the masked model computes, without any
fine-tuning.

A pruning *policy* records the kept channels per group, keyed by the group's producers,
so that a checkpoint can rebuild the sliced structure on a freshly built model.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from edgeprune.base.errors import EdgepruneError
from edgeprune.pruning.coupling import ChannelGraph, ChannelGroup, analyze

POLICY_VERSION = 1


def slice_model(model: nn.Module, graph: ChannelGraph, keep: Mapping[int, torch.Tensor]) -> nn.Module:
    """A sliced copy of ``model`` keeping ``keep[g]`` (channel indices) of each group ``g``.

    Groups absent from ``keep`` are kept whole; ``model`` itself is left untouched. Modules
    are sliced in place on the copy, so their classes and settings survive; so do forward
    hooks, hence slice a model whose masks are detached.
    """
    out_keep, channel_keep, in_drop = _plan(graph, keep)
    sliced = copy.deepcopy(model)
    modules = dict(sliced.named_modules())
    for name, kept in out_keep.items():
        _slice_out(modules[name], kept)
    for name, kept in channel_keep.items():
        _slice_channels(modules[name], kept)
    for name, dropped in in_drop.items():
        module = modules[name]
        width = module.in_features if isinstance(module, nn.Linear) else module.in_channels
        kept = torch.ones(width, dtype=torch.bool)
        kept[dropped] = False
        _slice_in(module, torch.nonzero(kept).flatten())
    return sliced


def policy_to_json(graph: ChannelGraph, keep: Mapping[int, torch.Tensor]) -> dict[str, Any]:
    """The kept channels of each group in ``keep``, keyed by its producers (JSON-serializable)."""
    groups = {group.index: group for group in graph.groups}
    entries = []
    for index in sorted(keep):
        group = _group(groups, index)
        kept = _kept_indices(group, keep[index])
        entries.append({"producers": list(group.producers), "size": group.size, "kept": kept.tolist()})
    return {"version": POLICY_VERSION, "input_shape": list(graph.input_shape), "groups": entries}


def apply_policy(model: nn.Module, policy: dict[str, Any]) -> nn.Module:
    """Slice a freshly built (unsliced) ``model`` as ``policy`` says; its weights are then loadable.

    The model is analysed again at the policy's input shape and the policy's groups are
    matched by their producers.
    """
    if not isinstance(policy, dict) or policy.get("version") != POLICY_VERSION:
        found = policy.get("version") if isinstance(policy, dict) else type(policy).__name__
        raise EdgepruneError(f"pruning policy: expected version {POLICY_VERSION}, found {found!r}")
    try:
        input_shape = [int(n) for n in policy["input_shape"]]
        entries = [(tuple(e["producers"]), int(e["size"]), [int(i) for i in e["kept"]]) for e in policy["groups"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise EdgepruneError(f"pruning policy: malformed ({type(exc).__name__}: {exc})") from exc
    graph = analyze(model, torch.zeros(input_shape))
    by_producers = {group.producers: group for group in graph.groups}
    keep = {}
    for producers, size, kept in entries:
        group = by_producers.get(producers)
        if group is None:
            raise EdgepruneError(f"pruning policy: the model has no channel group produced by {', '.join(producers)}")
        if group.size != size:
            raise EdgepruneError(
                f"pruning policy: the group produced by {producers[0]} has {group.size} channels, "
                f"the policy says {size}"
            )
        keep[group.index] = torch.tensor(kept, dtype=torch.long)
    return slice_model(model, graph, keep)


# --------------------------------------------------------------------------- planning


def _plan(
    graph: ChannelGraph, keep: Mapping[int, torch.Tensor]
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, list[int]]]:
    """Kept output channels per producer, kept channels per member, dropped inputs per consumer."""
    groups = {group.index: group for group in graph.groups}
    out_keep: dict[str, torch.Tensor] = {}
    channel_keep: dict[str, torch.Tensor] = {}
    in_drop: dict[str, list[int]] = {}
    for index, indices in keep.items():
        group = _group(groups, index)
        kept = _kept_indices(group, indices)
        if len(kept) == group.size:
            continue
        if not group.prunable:
            raise EdgepruneError(f"channel group {index} ({_label(group)}) cannot be pruned: {group.reason}")
        dropped = sorted(set(range(group.size)) - set(kept.tolist()))
        out_keep.update((name, kept) for name in group.producers)
        channel_keep.update((name, kept) for name in group.members)
        for consumer in group.consumers:
            in_drop.setdefault(consumer.module, []).extend(consumer.offset + i for i in dropped)
    return out_keep, channel_keep, in_drop


def _group(groups: dict[int, ChannelGroup], index: int) -> ChannelGroup:
    if index not in groups:
        raise EdgepruneError(f"no channel group {index}: the model has groups 0 to {len(groups) - 1}")
    return groups[index]


def _kept_indices(group: ChannelGroup, indices: torch.Tensor | list[int]) -> torch.Tensor:
    """Sorted kept indices, checked: in range, no duplicates, at least one channel."""
    kept = torch.as_tensor(indices, dtype=torch.long).flatten()
    unique = torch.unique(kept)
    label = f"channel group {group.index} ({_label(group)})"
    if len(unique) == 0:
        raise EdgepruneError(f"{label} would keep 0 of {group.size} channels; keep at least 1")
    if len(unique) != len(kept):
        raise EdgepruneError(f"{label}: kept channel indices repeat")
    if int(unique[0]) < 0 or int(unique[-1]) >= group.size:
        raise EdgepruneError(f"{label}: kept channel indices must lie in 0..{group.size - 1}")
    return unique


def _label(group: ChannelGroup) -> str:
    return f"produced by {group.producers[0]}" if group.producers else f"{group.size} channels"


# --------------------------------------------------------------------------- slicing modules


def _select(tensor: torch.Tensor, dim: int, kept: torch.Tensor) -> torch.Tensor:
    return tensor.detach().index_select(dim, kept.to(tensor.device)).clone()


def _set_param(module: nn.Module, name: str, value: torch.Tensor) -> None:
    old = getattr(module, name)
    setattr(module, name, nn.Parameter(value, requires_grad=old.requires_grad))


def _slice_out(module: nn.Module, kept: torch.Tensor) -> None:
    """Keep output channels ``kept`` of a conv or linear (weight dim 0, bias)."""
    if isinstance(module, nn.Linear):
        module.out_features = len(kept)
    else:
        _check_plain(module)
        module.out_channels = len(kept)
    _set_param(module, "weight", _select(module.weight, 0, kept))
    if module.bias is not None:
        _set_param(module, "bias", _select(module.bias, 0, kept))


def _slice_in(module: nn.Module, kept: torch.Tensor) -> None:
    """Keep input channels ``kept`` of a conv or linear (weight dim 1)."""
    if isinstance(module, nn.Linear):
        module.in_features = len(kept)
    else:
        _check_plain(module)
        module.in_channels = len(kept)
    _set_param(module, "weight", _select(module.weight, 1, kept))


def _slice_channels(module: nn.Module, kept: torch.Tensor) -> None:
    """Keep channels ``kept`` of a BatchNorm or depth-wise conv (one group per channel)."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        module.num_features = len(kept)
        for name in ("weight", "bias"):
            if getattr(module, name) is not None:
                _set_param(module, name, _select(getattr(module, name), 0, kept))
        for name in ("running_mean", "running_var"):
            if getattr(module, name) is not None:
                setattr(module, name, _select(getattr(module, name), 0, kept))
        return
    module.in_channels = module.out_channels = module.groups = len(kept)
    _set_param(module, "weight", _select(module.weight, 0, kept))
    if module.bias is not None:
        _set_param(module, "bias", _select(module.bias, 0, kept))


def _check_plain(module: nn.Module) -> None:
    """Only plain convs (groups == 1) lose input or output channels; coupling guarantees it."""
    if module.groups != 1 or module.transposed:
        raise RuntimeError(f"cannot slice {module}: grouped and transposed convs are kept whole")
