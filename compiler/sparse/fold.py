"""Fold a conv's row (output-channel) permutation into the layers after it, in PyTorch.

Storing a conv's rows grouped by pattern permutes its output channels. Where the conv's output
reaches exactly one conv through per-channel layers only (BatchNorm, element-wise activations),
the permutation is folded away: the conv's weight rows and bias, the BatchNorm's parameters and
statistics, and the next conv's *input* channels are permuted, and the network computes the
same function with the conv's rows already in group order (its ``row_order`` is the identity).

Anything else between (a residual add, a concat, a second reader, the network output, a
grouped next conv) would see the channels in the wrong order; there the conv keeps its rows
permuted and one gather (``ChannelGather``) restores the order right after it. The compiled
sparse kernel does the same on its store (it writes row ``r`` to ``row_order[r]``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.fx
from torch import nn

_PER_CHANNEL_MODULES = (nn.BatchNorm2d,)
_ELEMENTWISE_MODULES = (
    nn.ReLU, nn.ReLU6, nn.Hardswish, nn.Hardsigmoid, nn.SiLU, nn.GELU, nn.Sigmoid, nn.Tanh,
    nn.Identity, nn.Dropout, nn.LeakyReLU,
)
_ELEMENTWISE_FUNCTIONS = {
    torch.relu, torch.sigmoid, torch.tanh, nn.functional.relu, nn.functional.relu6,
    nn.functional.hardswish, nn.functional.hardsigmoid, nn.functional.silu, nn.functional.gelu,
}


@dataclass(frozen=True)
class FoldPlan:
    """How a permutation of ``conv``'s output channels is absorbed."""

    conv: str
    per_channel: tuple[str, ...]  # BatchNorms to permute with it
    consumer: str | None  # the conv whose input channels take the permutation
    reason: str | None = None  # why it cannot be folded (then: a gather)

    @property
    def foldable(self) -> bool:
        return self.consumer is not None


def plan_fold(model: nn.Module, conv: str) -> FoldPlan:
    """Follow ``conv``'s output through the traced graph to the layer that can absorb a permutation."""
    graph = torch.fx.symbolic_trace(model).graph
    modules = dict(model.named_modules())
    node = next((n for n in graph.nodes if n.op == "call_module" and n.target == conv), None)
    if node is None:
        return FoldPlan(conv, (), None, f"{conv} is not called in the traced graph")
    per_channel: list[str] = []
    while True:
        users = list(node.users)
        if len(users) != 1:
            return FoldPlan(conv, (), None, f"{node.name} has {len(users)} readers")
        user = users[0]
        module = modules.get(user.target) if user.op == "call_module" else None
        if isinstance(module, nn.Conv2d):
            if module.groups != 1:
                return FoldPlan(conv, (), None, f"next conv {user.target} is grouped")
            if user.args[0] is not node:
                return FoldPlan(conv, (), None, f"{user.target} reads it as a parameter")
            return FoldPlan(conv, tuple(per_channel), user.target)
        if isinstance(module, _PER_CHANNEL_MODULES):
            per_channel.append(user.target)
        elif isinstance(module, _ELEMENTWISE_MODULES) or (user.op == "call_function" and user.target in _ELEMENTWISE_FUNCTIONS
                                                         and len(user.all_input_nodes) == 1):
            pass
        else:
            what = user.target if user.op != "output" else "the network output"
            name = getattr(what, "__name__", what)
            return FoldPlan(conv, (), None, f"{node.name} feeds {name}, which mixes or exposes channels")
        node = user


class ChannelGather(nn.Module):
    """``x[:, index]``: the one gather that undoes a permutation that could not be folded."""

    def __init__(self, index: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("index", torch.as_tensor(np.asarray(index), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.index_select(1, self.index)


@torch.no_grad()
def apply_row_order(model: nn.Module, conv: str, order: np.ndarray) -> FoldPlan:
    """Put ``conv``'s output channels in ``order`` (stored row i = original row ``order[i]``).

    Folds the permutation into the following layers where ``plan_fold`` allows, else wraps the
    conv with a ``ChannelGather``. Either way the model computes the same function.
    """
    plan = plan_fold(model, conv)
    order_t = torch.as_tensor(np.asarray(order), dtype=torch.long)
    modules = dict(model.named_modules())
    layer = modules[conv]
    _permute_(layer, order_t, ("weight", "bias"))
    if plan.foldable:
        for name in plan.per_channel:
            _permute_(modules[name], order_t, ("weight", "bias", "running_mean", "running_var"))
        consumer = modules[plan.consumer]
        consumer.weight.copy_(consumer.weight[:, order_t])
    else:
        parent_name, _, child = conv.rpartition(".")
        parent = modules[parent_name] if parent_name else model
        setattr(parent, child, nn.Sequential(layer, ChannelGather(np.argsort(np.asarray(order)))))
    return plan


def _permute_(module: nn.Module, order: torch.Tensor, names: tuple[str, ...]) -> None:
    for name in names:
        tensor = getattr(module, name, None)
        if isinstance(tensor, torch.Tensor):
            tensor.copy_(tensor[order])
