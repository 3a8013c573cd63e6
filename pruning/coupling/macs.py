"""MACs per (output, input) channel pair of every conv/linear, and the ``ConvSite`` carrying them.

A site's MACs are ``macs_per_pair * out * in / groups``, so the MACs of the pruned model
follow from how many channels of each group are kept (the differentiable MACs count).
"""

from __future__ import annotations

import math
from collections import Counter

import torch
from torch import nn

from edgeprune.base.errors import EdgepruneError
from edgeprune.pruning.coupling.graph import ConvSite
from edgeprune.pruning.coupling.ops import WEIGHTED, is_depthwise, out_width
from edgeprune.pruning.coupling.running import eval_mode, one_line


def macs_per_pair(model: nn.Module, x: torch.Tensor) -> dict[str, int]:
    """Per sample, for every conv/linear called: MACs per (output, input-per-group) channel pair.

    A conv's MACs are ``pairs * out * in / groups`` with ``pairs = out_H*out_W*kh*kw``
    (a transposed conv slides over its input: ``in_H*in_W*kh*kw``); a linear's are
    ``tokens * out * in``.
    """
    names = {module: name for name, module in model.named_modules()}
    macs: Counter[str] = Counter()
    batch = x.shape[0] if x.dim() > 0 else 1

    def record(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if isinstance(module, nn.Linear):
            macs[names[module]] += output.numel() // module.out_features // batch
        else:
            spatial = (inputs[0] if module.transposed else output).shape[2:]
            macs[names[module]] += math.prod(spatial) * math.prod(module.kernel_size)

    handles = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, WEIGHTED)]
    try:
        with eval_mode(model), torch.no_grad():
            model(x)
    except Exception as exc:
        raise EdgepruneError(f"cannot run the model on an input of shape {tuple(x.shape)}: {one_line(exc)}") from exc
    finally:
        for handle in handles:
            handle.remove()
    return dict(macs)


def site(name: str, module: nn.Module, out_group: int | None, in_parts: tuple, macs_per_pair: int) -> ConvSite:
    groups = getattr(module, "groups", 1)
    return ConvSite(
        name=name,
        out_group=out_group,
        in_parts=in_parts,
        groups=groups,
        depthwise=is_depthwise(module),
        macs_per_pair=macs_per_pair,
        out_channels=out_width(module),
    )
