"""Soft column masks: finer structured pruning of conv/linear weights (for compiler.sparse).

A conv weight ``[out, in, kh, kw]`` is seen as the GEMM matrix ``[rows = out, cols = in*kh*kw]``
(a linear weight is one already). Its rows are split into consecutive *row groups* of
``row_group`` output channels, and each (row group, column) gets a soft mask ``s``, binarized
at ``tau`` with the same straight-through estimator as the channel masks
(``pruning.masks.binarize``). The forward pass uses ``weight * b`` with ``b`` spread over the
group's rows, so every row of a group keeps the same columns: exactly the structure the
grouped column-sparse format stores once per group and its kernel computes densely.

``ColumnMasks`` plugs into ``pruning.bilevel.BilevelPruner`` (it provides the per-unit
weights, sums and floors the pruner needs) with ``ColumnMacsRegularizer`` as the MACs term;
``from_dense_weights`` takes weights that are already sparse from elsewhere and reads the
masks off their exact zeros. ``prune_`` writes the binary masks into the weights as zeros.
"""

from __future__ import annotations

import math
import types
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from edgeprune.base.errors import EdgepruneError
from edgeprune.pruning.masks import TAU, binarize

_MASKABLE = (nn.Conv2d, nn.Linear)


@dataclass(frozen=True)
class ColumnLayer:
    """One masked layer: its GEMM view, row grouping, and output pixels per image (for MACs)."""

    name: str
    rows: int
    cols: int
    row_group: int
    pixels: int

    @property
    def groups(self) -> int:
        return math.ceil(self.rows / self.row_group)

    @property
    def group_sizes(self) -> torch.Tensor:
        """Rows in each row group (the last one may be short)."""
        sizes = torch.full((self.groups,), float(self.row_group))
        sizes[-1] = self.rows - self.row_group * (self.groups - 1)
        return sizes


def maskable_layers(model: nn.Module, example: torch.Tensor, names: list[str] | None = None, row_group: int = 8) -> list[ColumnLayer]:
    """``ColumnLayer`` of every dense (groups=1) conv and linear layer, or of those in ``names``."""
    modules = dict(model.named_modules())
    if names is not None:
        unknown = [n for n in names if not isinstance(modules.get(n), _MASKABLE)]
        if unknown:
            raise EdgepruneError(f"not a conv or linear layer of the model: {', '.join(unknown)}")
    chosen = [
        n for n, m in modules.items()
        if isinstance(m, _MASKABLE) and (names is None or n in names) and getattr(m, "groups", 1) == 1
    ]
    if names is not None and len(chosen) != len(names):
        grouped = sorted(set(names) - set(chosen))
        raise EdgepruneError(f"grouped convolutions have no column view: {', '.join(grouped)}")
    pixels: dict[str, int] = {}
    handles = [modules[n].register_forward_hook(_record_pixels(n, pixels)) for n in chosen]
    try:
        with torch.no_grad():
            model(example[:1])
    finally:
        for handle in handles:
            handle.remove()
    return [
        ColumnLayer(n, modules[n].weight.shape[0], modules[n].weight[0].numel(), row_group, pixels.get(n, 0))
        for n in chosen
    ]


def _record_pixels(name: str, into: dict[str, int]):
    def hook(module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        into[name] = output[0].numel() // module.weight.shape[0]

    return hook


class ColumnMasks(nn.Module):
    """Soft (row group x column) masks of some conv/linear layers, hooked into a model."""

    def __init__(self, layers: list[ColumnLayer], init: float = 1.0, tau: float = TAU, min_keep: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= min_keep <= 1.0:
            raise EdgepruneError(f"--min-keep must be between 0 and 1, got {min_keep}")
        self.layers = {str(i): layer for i, layer in enumerate(layers)}
        self.tau = tau
        self.min_keep = min_keep
        self.soft = nn.ParameterDict(
            {key: nn.Parameter(torch.full((layer.groups, layer.cols), float(init))) for key, layer in self.layers.items()}
        )
        self._attached: list[nn.Module] = []

    @classmethod
    def for_model(cls, model: nn.Module, example: torch.Tensor, names: list[str] | None = None,
                  row_group: int = 8, init: float = 1.0) -> "ColumnMasks":
        return cls(maskable_layers(model, example, names, row_group), init=init)

    @classmethod
    def from_dense_weights(cls, model: nn.Module, example: torch.Tensor, names: list[str] | None = None,
                           row_group: int = 1) -> "ColumnMasks":
        """Masks that reproduce weights already sparse: a (row group, column) is kept iff any of its weights is nonzero.

        With ``row_group=1`` every row keeps exactly its nonzero columns; larger groups keep
        the union of their rows' columns (the rest stay zero in the weights).
        """
        masks = cls(maskable_layers(model, example, names, row_group))
        modules = dict(model.named_modules())
        with torch.no_grad():
            for key, layer in masks.layers.items():
                nonzero = (modules[layer.name].weight.reshape(layer.rows, layer.cols) != 0).float()
                masks.soft[key].copy_(masks._group_sum(layer, nonzero).clamp_max(1.0))
        return masks

    # --- the masks -------------------------------------------------------------------------

    def binary(self, key: str) -> torch.Tensor:
        return binarize(self.soft[key], self.tau)

    def matrix(self, key: str) -> torch.Tensor:
        """The binary mask spread over the layer's rows: ``[rows, cols]``, differentiable through the STE."""
        layer = self.layers[key]
        return self.binary(key).repeat_interleave(layer.row_group, dim=0)[: layer.rows]

    def kept_counts(self) -> dict[str, torch.Tensor]:
        """Kept weights per layer (differentiable): the MACs of one output pixel."""
        return {key: (self.binary(key).sum(1) * layer.group_sizes).sum() for key, layer in self.layers.items()}

    def sparsity(self) -> float:
        kept = sum(float(v.detach()) for v in self.kept_counts().values())
        return 1.0 - kept / sum(layer.rows * layer.cols for layer in self.layers.values())

    # --- what pruning.bilevel.BilevelPruner needs ------------------------------------------

    def unit_weights(self, model: nn.Module) -> dict[str, list[torch.Tensor]]:
        """The weights each mask entry gates (biases are not masked: a row keeps its bias)."""
        modules = dict(model.named_modules())
        return {key: [modules[layer.name].weight] for key, layer in self.layers.items()}

    def unit_sum(self, key: str, values: torch.Tensor) -> torch.Tensor:
        """``values`` (shaped like the layer's weight) summed over each mask entry's weights."""
        layer = self.layers[key]
        return self._group_sum(layer, values.reshape(layer.rows, layer.cols))

    def spread(self, key: str, keep: torch.Tensor, param: torch.Tensor) -> torch.Tensor:
        """A mask-shaped ``keep`` as a factor of ``param`` (the layer's weight)."""
        layer = self.layers[key]
        return keep.repeat_interleave(layer.row_group, dim=0)[: layer.rows].reshape(param.shape)

    def floor(self, key: str) -> int:
        """Columns each row group keeps at least (one: an empty row would be a constant output)."""
        return max(1, math.ceil(self.min_keep * self.layers[key].cols))

    @staticmethod
    def _group_sum(layer: ColumnLayer, matrix: torch.Tensor) -> torch.Tensor:
        padded = F.pad(matrix, (0, 0, 0, layer.groups * layer.row_group - layer.rows))
        return padded.view(layer.groups, layer.row_group, layer.cols).sum(1)

    # --- hooking into the model ------------------------------------------------------------

    def attach(self, model: nn.Module) -> "ColumnMasks":
        """Run every masked layer with ``weight * mask`` from now on (the weights stay as they are)."""
        self.detach()
        modules = dict(model.named_modules())
        for key, layer in self.layers.items():
            module = modules[layer.name]
            module.forward = types.MethodType(_masked_forward(self, key), module)
            self._attached.append(module)
        return self

    def detach(self) -> None:
        for module in self._attached:
            del module.forward  # back to the class's forward
        self._attached.clear()

    @torch.no_grad()
    def prune_(self, model: nn.Module) -> None:
        """Zero the masked-out weights in place: the column-sparse weights the compiler stores."""
        modules = dict(model.named_modules())
        for key, layer in self.layers.items():
            weight = modules[layer.name].weight
            weight.mul_(self.matrix(key).reshape(weight.shape))


def _masked_forward(masks: ColumnMasks, key: str):
    def forward(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        weight = module.weight * masks.matrix(key).reshape(module.weight.shape)
        if isinstance(module, nn.Linear):
            return F.linear(x, weight, module.bias)
        return module._conv_forward(x, weight, module.bias)

    return forward


class ColumnMacsRegularizer:
    """The seed paper's MACs term (Eq. 4-5) over column masks, normalised as ``MacsRegularizer``.

    ``MACs(b) = fixed + sum_layers pixels * kept weights``; ``fixed`` is everything the masks do
    not touch. Units: the average MACs of one mask entry, so ``beta`` means what it means for
    channel masks.
    """

    def __init__(self, masks: ColumnMasks, total_macs: float, target_macs: float, beta: float = 0.01) -> None:
        self.pixels = {key: float(layer.pixels) for key, layer in masks.layers.items()}
        masked = sum(layer.pixels * layer.rows * layer.cols for layer in masks.layers.values())
        self.fixed = float(total_macs) - masked
        if self.fixed < 0:
            raise ValueError(f"masked MACs {masked} exceed the model's total {total_macs}")
        if not self.fixed < target_macs <= total_macs:
            raise EdgepruneError(
                f"target {target_macs / 1e9:.4g} GMACs is out of reach: column masks span "
                f"{self.fixed / 1e9:.4g} to {total_macs / 1e9:.4g} GMACs"
            )
        self.target = float(target_macs)
        self.beta = beta
        entries = sum(layer.groups * layer.cols for layer in masks.layers.values())
        self.scale = self.target / (masked / entries)

    def macs(self, counts: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.fixed + sum(self.pixels[key] * count for key, count in counts.items())

    def __call__(self, counts: dict[str, torch.Tensor]) -> torch.Tensor:
        relative = (self.macs(counts) - self.target) / self.target
        return self.beta * self.scale * relative**2
