"""The channel graph of a model ``torch.fx`` cannot trace, from Torch-Pruning's groups alone.

Without an fx graph the zeros cannot be followed, so there only plain conv -> BN ->
activation -> conv chains are pruned; without Torch-Pruning's graph either, nothing is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch_pruning as tp
from torch import nn

from edgeprune.pruning.coupling.graph import ChannelGraph, ChannelGroup, Consumer
from edgeprune.pruning.coupling.macs import site
from edgeprune.pruning.coupling.ops import WEIGHTED, in_width, is_depthwise, is_grouped, out_width
from edgeprune.pruning.coupling.torch_pruning_check import TPItem, torch_pruning_groups

# Autograd nodes (Torch-Pruning's elementwise ops) that keep a zero channel zero.
_TP_ZERO_KEEPING = (
    "ReluBackward", "HardtanhBackward", "HardswishBackward", "GeluBackward", "SiluBackward",
    "LeakyReluBackward", "EluBackward", "MaxPool2DWithIndicesBackward", "AvgPool2DBackward",
    "AdaptiveAvgPool2DBackward", "UpsampleBilinear2DBackward", "UpsampleNearest2DBackward",
)  # fmt: skip


def fallback_graph(
    model: nn.Module, x: torch.Tensor, macs: dict[str, int], selected: Callable[[str], bool], why: str
) -> ChannelGraph:
    """Without an fx graph zeros cannot be followed: prune only plain conv -> BN -> act -> conv chains.

    Without Torch-Pruning's graph either, every conv/linear output is a fixed group of its own.
    """
    tp_groups = torch_pruning_groups(model, x)
    if tp_groups is None:
        return _fixed_graph(model, x, macs, f"not traceable by torch.fx ({why}) nor by Torch-Pruning")
    reason = f"not traceable by torch.fx ({why}); only conv-BN-act chains are pruned"
    groups: list[ChannelGroup] = []
    out_group: dict[str, int] = {}
    read: dict[str, int] = {}
    for items in tp_groups:
        producers = tuple(item.name for item in items if item.whole_producer)
        if not producers or any(name in out_group for name in producers):
            continue
        chain = _plain_chain(items)
        outside = [name for name in producers if not selected(name)]
        why_not = "reaches the model output" if _reaches_output(items) else "" if chain else reason
        if not why_not and outside:
            why_not = f"{outside[0]} is not among the prunable layers"
        index = len(groups)
        groups.append(
            ChannelGroup(
                index=index,
                size=len(items[0].idxs),
                producers=producers,
                mask_points=(chain[0],) if chain else producers,
                members=tuple(item.name for item in items if _is_channelwise(item.module)),
                consumers=chain[1] if chain else (),
                prunable=not why_not,
                reason=why_not,
            )
        )
        out_group.update((name, index) for name in producers)
        if chain and not why_not:
            read.update((consumer.module, index) for consumer in chain[1])
    sites = []
    for name, module in model.named_modules():
        if name in macs:
            width = in_width(module)
            in_parts = ((read[name], width),) if name in read else ((None, width),)
            sites.append(site(name, module, out_group.get(name), in_parts, macs[name]))
    return ChannelGraph(tuple(groups), tuple(sites), tuple(x.shape))


def _fixed_graph(model: nn.Module, x: torch.Tensor, macs: dict[str, int], reason: str) -> ChannelGraph:
    groups, sites = [], []
    for name, module in model.named_modules():
        if name not in macs:
            continue
        out_group = None
        if not is_depthwise(module):
            out_group = len(groups)
            groups.append(ChannelGroup(out_group, out_width(module), (name,), (name,), (), (), False, reason))
        sites.append(site(name, module, out_group, ((None, in_width(module)),), macs[name]))
    return ChannelGraph(tuple(groups), tuple(sites), tuple(x.shape))


def _plain_chain(items: list[TPItem]) -> tuple[str, tuple[Consumer, ...]] | None:
    """(mask point, consumers) when the group is one conv -> [BN] -> zero-keeping ops -> convs."""
    producers = [item for item in items if item.out and isinstance(item.module, WEIGHTED)]
    if len(producers) != 1 or not producers[0].whole_producer or is_grouped(producers[0].module):
        return None
    producer = producers[0]
    size = len(producer.idxs)
    norms = [item for item in items if isinstance(item.module, nn.modules.batchnorm._BatchNorm)]
    if len(norms) > 1 or (norms and [n.module for n in producer.node.outputs] != [norms[0].module]):
        return None
    consumers = []
    for item in items:
        if item is producer or item in norms:
            continue
        if isinstance(item.module, WEIGHTED) and not item.out:
            plain = not isinstance(item.module, nn.modules.conv._ConvNd) or item.module.groups == 1
            if not plain or item.idxs != item.root_idxs or in_width(item.module) != size:
                return None
            consumers.append(Consumer(item.name, 0))
        elif not isinstance(item.module, tp.ops._ElementWiseOp) or not str(item.module._grad_fn).startswith(
            _TP_ZERO_KEEPING
        ):
            return None
    mask_point = norms[0].name if norms else producer.name
    return mask_point, tuple(consumers)


def _reaches_output(items: list[TPItem]) -> bool:
    """An output op in the group, or a producer whose output nothing reads (it is returned)."""
    return any(
        isinstance(item.module, tp.ops._OutputOp) or (item.whole_producer and not item.node.outputs) for item in items
    )


def _is_channelwise(module: Any) -> bool:
    return isinstance(module, nn.modules.batchnorm._BatchNorm) or is_depthwise(module)
