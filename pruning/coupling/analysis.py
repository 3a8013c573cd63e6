"""``analyze`` and the per-layer selection of prunable layers.

``analyze`` runs the fx channel-flow analysis (``flow``) on the model's ``torch.fx`` graph,
has Torch-Pruning cross-check the groups it finds prunable (``torch_pruning_check``), and
falls back to Torch-Pruning's groups alone for models ``torch.fx`` cannot trace
(``fallback``).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from edgeprune.base.errors import EdgepruneError
from edgeprune.pruning.coupling.fallback import fallback_graph
from edgeprune.pruning.coupling.flow import ChannelFlow
from edgeprune.pruning.coupling.graph import ChannelGraph
from edgeprune.pruning.coupling.macs import macs_per_pair
from edgeprune.pruning.coupling.running import eval_mode, one_line
from edgeprune.pruning.coupling.torch_pruning_check import torch_pruning_ties


def analyze(
    model: nn.Module, example_input: torch.Tensor, prunable: Callable[[str], bool] | None = None
) -> ChannelGraph:
    """Find the channel groups and MACs sites of ``model`` on ``example_input``.

    ``prunable(name)`` restricts pruning to groups whose producers all satisfy it (a
    per-layer config); by default every structurally prunable group is prunable. The model
    is analysed in eval mode and left in the mode it was in.
    """
    selected = prunable or _everything
    macs = macs_per_pair(model, example_input)
    input_shape = tuple(example_input.shape)
    try:
        with eval_mode(model), torch.no_grad():
            graph_module = fx.symbolic_trace(model)
            ShapeProp(graph_module).propagate(example_input)
    except Exception as exc:  # untraceable user code: fall back to Torch-Pruning's autograd graph
        return fallback_graph(model, example_input, macs, selected, one_line(exc))
    flow = ChannelFlow(graph_module)
    flow.run()
    flow.resolve()
    roots = [flow.owner[root] for root in flow.candidates(selected)]
    flow.check_ties(torch_pruning_ties(model, example_input, roots))
    return flow.build(model, macs, selected, input_shape)


def default_prunable(model_name: str) -> Callable[[str], bool]:
    """The layers a built-in model prunes by default; every conv for user models.

    TopFormer prunes its token pyramid (``tpm``), DeepLabV3+ its MobileNetV2 ``backbone``.
    """
    scope = _BUILTIN_SCOPES.get(model_name)
    return _everything if scope is None else _Under(scope)


def check_layer_names(model: nn.Module, names: list[str]) -> None:
    """Raise ``EdgepruneError`` for a per-layer config name that matches no module of ``model``."""
    known = [name for name, _ in model.named_modules() if name]
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise EdgepruneError(f"layer {name!r} names no module of the model{hint}")


_BUILTIN_SCOPES = {
    "topformer-tiny": "tpm",
    "topformer-small": "tpm",
    "topformer-base": "tpm",
    "topformer-supernet": "tpm",
    "deeplabv3plus-mbv2": "backbone",
}


def _everything(name: str) -> bool:
    return True


@dataclass(frozen=True)
class _Under:
    """``name`` is the module ``prefix`` or inside it (picklable, unlike a lambda)."""

    prefix: str

    def __call__(self, name: str) -> bool:
        return name == self.prefix or name.startswith(self.prefix + ".")
