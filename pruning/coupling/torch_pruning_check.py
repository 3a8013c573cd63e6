"""Torch-Pruning's groups: the cross-check of the fx analysis, and the fallback's source.

Torch-Pruning's ``DependencyGraph`` (autograd-traced) cross-checks the groups the fx
analysis finds prunable: one it ties to another group is made unprunable. It is not the
primary source because version 1.6 fails on TopFormer's token split (``IndexError`` in its
index mapping for the transformer's residual stream), treats unknown ops such as the
attention ``matmul`` as elementwise, tells no zero-keeping op from a zero-breaking one,
and slices grouped-conv inputs correctly only for one index pattern. For models
``torch.fx`` cannot trace it is the fallback (see ``fallback``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import torch
import torch_pruning as tp
from torch import nn

from edgeprune.pruning.coupling.ops import WEIGHTED, is_depthwise, out_width
from edgeprune.pruning.coupling.running import eval_mode


@dataclass(frozen=True)
class TPItem:
    """One entry of a Torch-Pruning group, with plain indices."""

    name: str
    module: Any
    out: bool  # the entry prunes the module's output channels (else its input channels)
    idxs: tuple[int, ...]
    root_idxs: tuple[int, ...]
    node: Any

    @property
    def whole_producer(self) -> bool:
        """A conv/linear (not depth-wise) whose every output channel is in the group."""
        return (
            self.out
            and isinstance(self.module, WEIGHTED)
            and not is_depthwise(self.module)
            and len(self.idxs) == out_width(self.module)
        )


def torch_pruning_groups(
    model: nn.Module, x: torch.Tensor, roots: list[str] | None = None
) -> list[list[TPItem]] | None:
    """Torch-Pruning's groups rooted at ``roots`` (default: every conv/linear not in an earlier group).

    Roots on which Torch-Pruning 1.6 fails (its index mapping raises on some graphs) are
    skipped; None when it cannot trace the model at all. Its groups cost time in proportion
    to channels times graph size (seconds for TopFormer's attention), hence ``roots``.
    """
    names = {module: name for name, module in model.named_modules()}
    with warnings.catch_warnings(), torch.enable_grad(), eval_mode(model):
        warnings.simplefilter("ignore")
        try:
            # An input that requires grad gives every op a grad_fn, even with frozen weights.
            traced_input = x.detach().clone().requires_grad_(x.is_floating_point())
            graph = tp.DependencyGraph().build_dependency(model, example_inputs=(traced_input,), verbose=False)
        except Exception:
            return None
        groups: list[list[TPItem]] = []
        covered: set[str] = set()
        wanted = None if roots is None else set(roots)
        for name, module in model.named_modules():
            if not isinstance(module, WEIGHTED) or name in covered or module not in graph.module2node:
                continue
            if wanted is not None and name not in wanted:
                continue
            pruner = graph.get_pruner_of_module(module)
            try:
                group = graph.get_pruning_group(module, pruner.prune_out_channels, list(range(out_width(module))))
            except Exception:
                continue
            items = [
                TPItem(
                    name=names.get(item.dep.target.module, repr(item.dep.target.module)),
                    module=item.dep.target.module,
                    out=graph.is_out_channel_pruning_fn(item.dep.handler),
                    idxs=tuple(item.idxs),
                    root_idxs=tuple(item.root_idxs),
                    node=item.dep.target,
                )
                for item in group.items
            ]
            covered.update(item.name for item in items if item.out and isinstance(item.module, WEIGHTED))
            groups.append(items)
    return groups


def torch_pruning_ties(model: nn.Module, x: torch.Tensor, roots: list[str]) -> list[list[str]]:
    """The convs/linears whose outputs Torch-Pruning prunes together with each of ``roots``."""
    if not roots:
        return []
    groups = torch_pruning_groups(model, x, roots) or []
    return [[item.name for item in items if item.whole_producer] for items in groups]
