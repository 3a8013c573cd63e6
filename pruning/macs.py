"""Parameters and multiply-accumulates (MACs) of a network, counted as papers report them.

What is counted, per call made during one forward pass:

* convolutions (``F.conv1d/2d/3d``, so every ``nn.Conv*d``):
  ``MACs = output elements * (in_channels / groups) * prod(kernel)``;
* transposed convolutions: ``MACs = input elements * (out_channels / groups) * prod(kernel)``;
* linear layers (``F.linear``, so every ``nn.Linear``, on inputs of any rank):
  ``MACs = output elements * in_features``;
* matrix products written in ``forward`` (attention): ``torch.matmul``/``@``, ``mm``,
  ``bmm``, two-operand ``torch.einsum`` and ``F.scaled_dot_product_attention``:
  ``MACs = output elements * contracted size`` (broadcast batch dims included).

Biases, BatchNorm, activations, softmax, pooling, interpolation and element-wise adds are
not counted: they are element-wise work, not multiply-accumulates of a layer's weights, and
the conv/linear/matmul MACs are what papers report as a model's GMACs and what pruning
channels reduces. (Counters differ at the margins, e.g. mmcv's adds BN and activations and
misses functional matmuls, so a published figure can differ from this count by a little.)
Parameters are ``sum(p.numel() for p in model.parameters())``, as papers report them;
buffers (BN running statistics) are not counted.

The calls are caught with a ``TorchFunctionMode``, so convolutions done functionally (not
through an ``nn.Module``) count as well, with the shapes actually used. Each call is
attributed to the innermost module whose ``forward`` is running. A torch function that is
itself written in Python and overridable (``F.multi_head_attention_forward``, used by
``nn.MultiheadAttention``) is opaque to the mode: the products inside it are not seen.
``reference_macs`` counts at the ATen level with PyTorch's own formulas and sees them; the
tests check the two counts agree on the built-in models.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

_CONVS = (F.conv1d, F.conv2d, F.conv3d)
_TRANSPOSED_CONVS = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)
_MATMULS = (torch.matmul, torch.Tensor.matmul, torch.mm, torch.Tensor.mm, torch.bmm, torch.Tensor.bmm)
_ROOT = "(root)"


@dataclass(frozen=True)
class LayerCost:
    """One counted call: a conv, linear or matrix product."""

    name: str  # the module's qualified name, or "<matmul #k in module X>" for a functional call
    kind: str  # "conv", "dwconv", "linear" or "matmul"
    macs: int
    params: int  # elements of the weight (and bias) the call used; 0 for a matmul
    in_channels: int | None
    out_channels: int | None
    groups: int | None
    output_shape: tuple[int, ...]


@dataclass(frozen=True)
class ModelCost:
    macs: int
    params: int
    layers: tuple[LayerCost, ...]
    input_shape: tuple[int, ...]

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9

    @property
    def params_m(self) -> float:
        return self.params / 1e6

    def by_kind(self) -> dict[str, int]:
        """MACs per layer kind, in the order the kinds first occur."""
        totals: dict[str, int] = {}
        for layer in self.layers:
            totals[layer.kind] = totals.get(layer.kind, 0) + layer.macs
        return totals


def count_cost(model: nn.Module, input_shape: tuple[int, ...]) -> ModelCost:
    """Count the parameters and the conv/linear/matmul MACs of one forward pass of ``model``.

    The model runs in eval mode under ``torch.no_grad()`` on zeros of ``input_shape``
    (batch included: MACs scale with it); every module's training flag is restored and every
    hook removed afterwards, also when the forward pass raises.
    """
    shape = _check_shape(input_shape)
    names = {module: name or _ROOT for name, module in model.named_modules()}
    counter = _CallCounter(names)
    handles = []
    try:
        for module in names:
            handles.append(module.register_forward_pre_hook(counter.enter))
            handles.append(module.register_forward_hook(counter.leave, always_call=True))
        with _evaluating(model), counter:
            model(_zeros(model, shape))
    finally:
        for handle in handles:
            handle.remove()
    params = sum(p.numel() for p in model.parameters())
    layers = tuple(counter.layers)
    return ModelCost(macs=sum(layer.macs for layer in layers), params=params, layers=layers, input_shape=shape)


def reference_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """MACs of one forward pass counted by ``torch.utils.flop_counter`` (ATen ops, FLOPs / 2).

    An independent check of ``count_cost``: PyTorch's formulas, applied to the ATen ops the
    forward pass dispatches (convolution, mm, bmm, addmm, attention), not to torch functions.
    ``FlopCounterMode`` has no entry for the CPU attention kernel that
    ``F.scaled_dot_product_attention`` dispatches to on CPU, so it gets PyTorch's own
    attention formula here.
    """
    shape = _check_shape(input_shape)
    cpu_attention = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _attention_flops}
    with _evaluating(model), FlopCounterMode(display=False, custom_mapping=cpu_attention) as flops:
        model(_zeros(model, shape))
    return flops.get_total_flops() // 2


def _attention_flops(query: torch.Size, key: torch.Size, value: torch.Size, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query, key, value)


class _CallCounter(TorchFunctionMode):
    """Records a ``LayerCost`` for every conv, linear and matrix product called."""

    def __init__(self, names: dict[nn.Module, str]) -> None:
        super().__init__()
        self.names = names
        self.stack: list[nn.Module] = []  # modules whose forward is running, innermost last
        self.layers: list[LayerCost] = []
        self._calls: Counter[tuple[str, str]] = Counter()

    def enter(self, module: nn.Module, inputs: tuple) -> None:
        self.stack.append(module)

    def leave(self, module: nn.Module, inputs: tuple, output: object) -> None:
        self.stack.pop()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func in _CONVS or func in _TRANSPOSED_CONVS:
            self._conv(func in _TRANSPOSED_CONVS, args, kwargs, out)
        elif func is F.linear:
            weight = _arg(args, kwargs, 1, "weight")
            params = _numel(weight, _arg(args, kwargs, 2, "bias"))
            self._record(nn.Linear, "linear", out.numel() * weight.shape[1], params, weight.shape[1], weight.shape[0],
                         None, out)
        elif func in _MATMULS:
            contracted = _arg(args, kwargs, 0, "input").shape[-1]
            self._record(None, "matmul", out.numel() * contracted, 0, None, None, None, out)
        elif func is torch.einsum:
            self._einsum(args, out)
        elif func is F.scaled_dot_product_attention:
            query, key, value = (_arg(args, kwargs, i, n) for i, n in enumerate(("query", "key", "value")))
            # softmax(q @ k^T) @ v: L x S x E products for the scores, L x S x Ev for the output.
            per_head = query.shape[-2] * key.shape[-2] * (query.shape[-1] + value.shape[-1])
            self._record(None, "matmul", math.prod(out.shape[:-2]) * per_head, 0, None, None, None, out)
        return out

    def _conv(self, transposed: bool, args: tuple, kwargs: dict, out: torch.Tensor) -> None:
        x, weight = _arg(args, kwargs, 0, "input"), _arg(args, kwargs, 1, "weight")
        # conv*d(input, weight, bias, stride, padding, dilation, groups) and
        # conv_transpose*d(input, weight, bias, stride, padding, output_padding, groups, dilation).
        groups = int(_arg(args, kwargs, 6, "groups") or 1)
        kernel = math.prod(weight.shape[2:])
        if transposed:  # weight [in, out / groups, *kernel]: every input element feeds out/groups*kernel outputs
            in_channels, out_channels = weight.shape[0], weight.shape[1] * groups
            macs = x.numel() * weight.shape[1] * kernel
        else:  # weight [out, in / groups, *kernel]
            in_channels, out_channels = weight.shape[1] * groups, weight.shape[0]
            macs = out.numel() * weight.shape[1] * kernel
        kind = "dwconv" if groups > 1 and groups == in_channels else "conv"
        params = _numel(weight, _arg(args, kwargs, 2, "bias"))
        self._record(nn.modules.conv._ConvNd, kind, macs, params, in_channels, out_channels, groups, out)

    def _einsum(self, args: tuple, out: torch.Tensor) -> None:
        equation, operands = args[0], args[1:]
        if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
            operands = tuple(operands[0])
        if not isinstance(equation, str) or len(operands) != 2:
            warnings.warn("count_cost: only two-operand einsum equations are counted; one was skipped", stacklevel=3)
            return
        inputs, explicit, output = equation.replace(" ", "").partition("->")
        left, right = inputs.split(",")
        if not explicit:  # implicit output: the labels that occur once
            output = "".join(c for c in left + right if (left + right).count(c) == 1)
        sizes = {**_label_sizes(left, operands[0].shape), **_label_sizes(right, operands[1].shape)}
        contracted = (set(sizes) & set(left) & set(right)) - set(output)
        self._record(None, "matmul", out.numel() * math.prod(sizes[c] for c in contracted), 0, None, None, None, out)

    def _record(self, module_type: type | None, kind: str, macs: int, params: int, in_channels: int | None,
                out_channels: int | None, groups: int | None, out: torch.Tensor) -> None:
        """Name the call after the running module if it is that layer, else as a call inside it."""
        module = self.stack[-1] if self.stack else None
        where = self.names.get(module, _ROOT)
        if module_type is not None and isinstance(module, module_type):
            name = where
        else:
            label = kind.removeprefix("dw")
            self._calls[label, where] += 1
            name = f"<{label} #{self._calls[label, where]} in module {where}>"
        self.layers.append(LayerCost(name, kind, int(macs), int(params), in_channels, out_channels, groups,
                                     tuple(out.shape)))


def _label_sizes(labels: str, shape: torch.Size) -> dict[str, int]:
    """Size of each einsum label of one operand; ``...`` stands for the dims between."""
    head, ellipsis, tail = labels.partition("...")
    sizes = dict(zip(head, shape))
    if ellipsis and tail:
        sizes.update(zip(tail, shape[-len(tail):]))
    return sizes


def _arg(args: tuple, kwargs: dict, index: int, name: str):
    return args[index] if len(args) > index else kwargs.get(name)


def _numel(*tensors: torch.Tensor | None) -> int:
    return sum(t.numel() for t in tensors if t is not None)


def _check_shape(input_shape: tuple[int, ...]) -> tuple[int, ...]:
    shape = tuple(input_shape)
    if not shape or not all(isinstance(d, int) and d > 0 for d in shape):
        raise ValueError(f"input_shape must be a tuple of positive ints, got {input_shape!r}")
    return shape


def _zeros(model: nn.Module, shape: tuple[int, ...]) -> torch.Tensor:
    """Zeros in the dtype and on the device of the model's first floating-point parameter."""
    reference = next((p for p in model.parameters() if p.is_floating_point()), None)
    if reference is None:
        return torch.zeros(shape)
    return torch.zeros(shape, dtype=reference.dtype, device=reference.device)


@contextmanager
def _evaluating(model: nn.Module) -> Iterator[None]:
    """Eval mode and no autograd for the duration; each module's own training flag restored."""
    flags = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for module, training in flags:
            module.training = training
