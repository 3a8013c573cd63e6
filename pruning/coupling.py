"""Channel groups: which output channels of a conv net are pruned together, and how.

Pruning removes output channels of convs (and linears). Channels tied together must share
one mask and be removed together: a conv and the BatchNorm after it, a depth-wise conv
(its output channel ``c`` is its input channel ``c``), the two branches of a residual add,
the operands of an elementwise mul. A concat feeds each part to a later layer at an offset
of its input channels. ``analyze`` finds these *channel groups* on the model's
``torch.fx`` graph and reports, for each group, where the mask goes and everything the
slicer must cut, plus one ``ConvSite`` per conv/linear for the differentiable MACs count.

Mask placement and zero-preservation
------------------------------------
The masked model multiplies a group's channels by a 0/1 mask at its *mask points*. For
the slice to compute exactly what the masked model computes, a pruned channel must be
exactly zero wherever a conv or linear reads it: then deleting that input channel (and
the weights reading it) changes nothing. Hence:

* A producer's mask point is the BatchNorm that directly follows it, not the conv itself:
  ``BN(0) = beta - gamma * mean / sqrt(var + eps)`` is not zero, so a mask before the BN
  would leave the pruned channel alive. Without a BN the producer itself is masked (a
  conv bias would otherwise make the channel nonzero).
* Every BatchNorm of a group is a mask point too, and so is every depth-wise conv (through
  the BatchNorm after it, or itself): a zero entering a BN or a biased conv leaves nonzero.
* Between mask points the zeros are followed along the graph: ReLU, ReLU6, hardswish,
  GELU, dropout, pooling, interpolation, concat and reshapes that keep the channel axis
  keep a zero channel zero; a product is zero when either factor is; a sum only when all
  terms are (the terms of a residual add share a group, so they are masked together);
  sigmoid, h_sigmoid, BatchNorm or adding a constant turn zero into nonzero. A group
  whose pruned channels may reach a conv/linear input nonzero is not prunable.

TopFormer's semantic injection ``local * h_sigmoid(act(global)) + embed(global)`` is
exact this way: the gate ``h_sigmoid(0) = 0.5`` is nonzero but multiplies a zero, and
both terms of the sum are masked.

Not prunable: groups that reach the model output (the classifier), channels reshaped into
attention heads or mixed by any op the analysis does not know, channels split by sizes
fixed in the model's code (``split``/``chunk``/slicing), groups read or written by grouped
convs (the slice would need the same number of channels in every conv group), channels
only partly aligned with another group (TopFormer's pyramid outputs: concatenated into the
transformer's residual stream, whose convs write all its channels at once, and no group
can be part of another's output), modules called more than once, and modules the slicer
cannot cut (LayerNorm, GroupNorm, PReLU, transposed convs, ...).

Torch-Pruning
-------------
Torch-Pruning's ``DependencyGraph`` (autograd-traced) cross-checks the groups the fx
analysis finds prunable: one it ties to another group is made unprunable. It is not the
primary source because version 1.6 fails on TopFormer's token split (``IndexError`` in its
index mapping for the transformer's residual stream), treats unknown ops such as the
attention ``matmul`` as elementwise, tells no zero-keeping op from a zero-breaking one,
and slices grouped-conv inputs correctly only for one index pattern. For models
``torch.fx`` cannot trace it is the fallback: there only plain conv -> BN -> activation ->
conv chains are pruned.
"""

from __future__ import annotations

import difflib
import math
import operator
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
import torch_pruning as tp
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp, TensorMetadata

from edgeprune.base.errors import EdgepruneError


@dataclass(frozen=True)
class Consumer:
    module: str  # qualified name of a conv/linear whose INPUT channels read this group
    offset: int  # where the group's channels start in that module's input channels (concat)


@dataclass(frozen=True)
class ChannelGroup:
    index: int
    size: int  # number of channels
    producers: tuple[str, ...]  # convs/linears (not depth-wise) whose OUTPUT channels are exactly this group
    mask_points: tuple[str, ...]  # modules whose forward output is multiplied by the group's binary mask
    members: tuple[str, ...]  # BatchNorms and depth-wise convs sliced along their channels with the group
    consumers: tuple[Consumer, ...]
    prunable: bool
    reason: str  # "" if prunable, else why not


@dataclass(frozen=True)
class ConvSite:
    name: str
    out_group: int | None  # group of its output channels (None: fixed width)
    in_parts: tuple[tuple[int | None, int], ...]  # input channels as consecutive (group or None, count)
    groups: int  # conv groups (depth-wise: groups == in == out)
    depthwise: bool
    macs_per_pair: int  # MACs per (output channel, input channel per group): out_H*out_W*kh*kw (linear: tokens)
    out_channels: int  # full output width


@dataclass(frozen=True)
class ChannelGraph:
    groups: tuple[ChannelGroup, ...]
    sites: tuple[ConvSite, ...]
    input_shape: tuple[int, ...]


def analyze(
    model: nn.Module, example_input: torch.Tensor, prunable: Callable[[str], bool] | None = None
) -> ChannelGraph:
    """Find the channel groups and MACs sites of ``model`` on ``example_input``.

    ``prunable(name)`` restricts pruning to groups whose producers all satisfy it (a
    per-layer config); by default every structurally prunable group is prunable. The model
    is analysed in eval mode and left in the mode it was in.
    """
    selected = prunable or _everything
    macs = _macs_per_pair(model, example_input)
    input_shape = tuple(example_input.shape)
    try:
        with _eval_mode(model), torch.no_grad():
            graph_module = fx.symbolic_trace(model)
            ShapeProp(graph_module).propagate(example_input)
    except Exception as exc:  # untraceable user code: fall back to Torch-Pruning's autograd graph
        return _fallback_graph(model, example_input, macs, selected, _one_line(exc))
    flow = _ChannelFlow(graph_module)
    flow.run()
    flow.resolve()
    roots = [flow.owner[root] for root in flow.candidates(selected)]
    flow.check_ties(_torch_pruning_ties(model, example_input, roots))
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


# --------------------------------------------------------------------------- module kinds

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_WEIGHTED = (nn.modules.conv._ConvNd, nn.Linear)


def _is_depthwise(module: nn.Module) -> bool:
    """One input channel per output channel, same width: the output channel *is* the input channel."""
    return (
        isinstance(module, _CONVS)
        and module.groups > 1
        and module.groups == module.in_channels == module.out_channels
    )


def _is_grouped(module: nn.Module) -> bool:
    return isinstance(module, _CONVS) and module.groups > 1 and not _is_depthwise(module)


# Channel-wise ops that map 0 to 0: a masked channel stays zero through them.
_ZERO_KEEPING_MODULES = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.Hardswish, nn.GELU, nn.SiLU, nn.Mish, nn.ELU, nn.CELU,
    nn.SELU, nn.Tanh, nn.Softsign, nn.Hardshrink, nn.Softshrink, nn.Tanhshrink, nn.Identity,
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout,
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d, nn.LPPool1d, nn.LPPool2d, nn.Upsample,
    nn.UpsamplingNearest2d, nn.UpsamplingBilinear2d, nn.ZeroPad1d, nn.ZeroPad2d, nn.ZeroPad3d,
    nn.ReflectionPad1d, nn.ReflectionPad2d, nn.ReflectionPad3d, nn.ReplicationPad1d,
    nn.ReplicationPad2d, nn.ReplicationPad3d, nn.CircularPad1d, nn.CircularPad2d, nn.CircularPad3d,
)  # fmt: skip
# Channel-wise ops that may turn a zero channel nonzero.
_ZERO_BREAKING_MODULES = (nn.Sigmoid, nn.Hardsigmoid, nn.Softplus, nn.LogSigmoid)

_ZERO_KEEPING_FUNCTIONS = {
    F.relu, F.relu_, torch.relu, torch.relu_, F.relu6, F.leaky_relu, F.hardswish, F.gelu, F.silu,
    F.mish, F.elu, F.celu, F.selu, torch.tanh, F.tanh, F.softsign, F.dropout, F.dropout1d,
    F.dropout2d, F.dropout3d, F.alpha_dropout, F.feature_alpha_dropout, F.max_pool1d,
    F.max_pool2d, F.max_pool3d, F.avg_pool1d, F.avg_pool2d, F.avg_pool3d, F.adaptive_avg_pool1d,
    F.adaptive_avg_pool2d, F.adaptive_avg_pool3d, F.adaptive_max_pool1d, F.adaptive_max_pool2d,
    F.adaptive_max_pool3d, F.lp_pool1d, F.lp_pool2d, F.interpolate, F.upsample,
    F.upsample_bilinear, F.upsample_nearest, torch.abs, torch.neg, operator.neg, torch.clone,
}  # fmt: skip
_ZERO_BREAKING_FUNCTIONS = {torch.sigmoid, F.sigmoid, F.hardsigmoid, F.softplus, F.logsigmoid, torch.exp}
_ZERO_KEEPING_METHODS = {
    "relu", "relu_", "contiguous", "clone", "detach", "float", "half", "double", "to", "type_as",
    "abs", "neg", "tanh", "cpu", "cuda",
}  # fmt: skip
_ZERO_BREAKING_METHODS = {"sigmoid", "sigmoid_", "exp"}

_ADD = {operator.add, operator.iadd, torch.add, "add", "add_", operator.sub, operator.isub, torch.sub, "sub", "sub_"}
_MUL = {operator.mul, operator.imul, torch.mul, "mul", "mul_"}
_DIV = {operator.truediv, operator.itruediv, torch.div, "div", "div_"}
_CAT = {torch.cat, torch.concat, torch.concatenate}
_SPLIT = {torch.split, "split", torch.chunk, "chunk"}
_RESHAPE = {
    torch.reshape, "reshape", "view", torch.flatten, "flatten", torch.squeeze, "squeeze",
    torch.unsqueeze, "unsqueeze", "view_as", "reshape_as", "expand", "expand_as",
}  # fmt: skip
_PERMUTE = {torch.permute, "permute", torch.transpose, "transpose"}
_REDUCE = {torch.mean, "mean", torch.sum, "sum", torch.amax, "amax"}
_SOFTMAX = {F.softmax, torch.softmax, "softmax"}


# --------------------------------------------------------------------------- channel layouts


@dataclass(frozen=True)
class _Seg:
    """Consecutive channels ``start:start+length`` of a space (None: fixed-width channels)."""

    space: int | None
    start: int
    length: int
    zero: bool = True  # a masked channel of the space is exactly zero here
    lost: str = ""  # where it stopped being zero


@dataclass(frozen=True)
class _Layout:
    """What the channels along axis ``dim`` of a tensor are, as consecutive segments."""

    dim: int
    segs: tuple[_Seg, ...]

    @property
    def width(self) -> int:
        return sum(seg.length for seg in self.segs)

    def nonzero(self, where: str) -> _Layout:
        return _Layout(self.dim, tuple(_lose(seg, where) for seg in self.segs))

    def zeroed(self) -> _Layout:
        return _Layout(self.dim, tuple(replace(seg, zero=True, lost="") for seg in self.segs))


def _lose(seg: _Seg, where: str) -> _Seg:
    return replace(seg, zero=False, lost=where) if seg.zero else seg


def _fixed(width: int) -> tuple[_Seg, ...]:
    return (_Seg(None, 0, width),)


def _cut(segs: tuple[_Seg, ...], start: int, stop: int) -> tuple[_Seg, ...]:
    """The segments covering channels ``start:stop``."""
    out, pos = [], 0
    for seg in segs:
        lo, hi = max(start, pos), min(stop, pos + seg.length)
        if lo < hi:
            out.append(replace(seg, start=seg.start + lo - pos, length=hi - lo))
        pos += seg.length
    return tuple(out)


def _pieces(a: tuple[_Seg, ...], b: tuple[_Seg, ...]) -> Iterator[tuple[_Seg, _Seg]]:
    """Pairs of equally long sub-segments of two layouts of the same width."""
    bounds = sorted({0, *_ends(a), *_ends(b)})
    for lo, hi in zip(bounds, bounds[1:]):
        yield _cut(a, lo, hi)[0], _cut(b, lo, hi)[0]


def _ends(segs: tuple[_Seg, ...]) -> list[int]:
    ends, pos = [], 0
    for seg in segs:
        pos += seg.length
        ends.append(pos)
    return ends


def _layouts(value: Any) -> Iterator[_Layout]:
    if isinstance(value, _Layout):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _layouts(item)
    elif isinstance(value, dict):
        yield from _layouts(list(value.values()))


# --------------------------------------------------------------------------- fx analysis


@dataclass(frozen=True)
class _Operand:
    """One argument of an elementwise op: a tensor (with or without a layout) or a number."""

    layout: _Layout | None
    shape: tuple[int, ...] | None  # None: a Python number
    value: Any

    def spans(self, dim: int, rank: int, width: int) -> bool:
        """Whether it has the result's full channel axis (rather than broadcasting over it)."""
        if self.shape is None:
            return False
        axis = dim - (rank - len(self.shape))
        return axis >= 0 and self.shape[axis] == width

    def segs(self, width: int) -> tuple[_Seg, ...]:
        return self.layout.segs if self.layout is not None else _fixed(width)


class _ChannelFlow:
    """Follows channel layouts through an fx graph that carries ``ShapeProp`` metadata.

    Every conv/linear output is a *space* of channels; elementwise ops tie aligned spaces
    together (union-find) and the resulting sets of spaces are the channel groups. A space
    gets a reason when something makes it unprunable; its group inherits the reason.
    """

    def __init__(self, graph_module: fx.GraphModule) -> None:
        self.graph = graph_module.graph
        self.modules = dict(graph_module.named_modules())
        self.env: dict[fx.Node, Any] = {}
        self.parent: list[int] = []
        self.size: list[int] = []
        self.owner: list[str] = []  # the module whose output is the space
        self.reasons: dict[int, str] = {}  # space -> why its group is not prunable (first reason wins)
        self.space_of: dict[str, int] = {}  # conv/linear (not depth-wise) -> its output space
        self.weight_inputs: dict[str, _Layout | None] = {}  # conv/linear (not depth-wise) -> input layout
        self.channel_inputs: dict[str, _Layout | None] = {}  # BatchNorm / depth-wise conv -> input layout
        self.mask_point_of: dict[str, str] = {}  # conv/linear -> the module masked for its output
        self.members: dict[int, list[str]] = {}  # group root -> BatchNorms and depth-wise convs
        self.consumers: dict[int, list[Consumer]] = {}  # group root -> convs/linears reading it whole
        self.calls = Counter(node.target for node in self.graph.nodes if node.op == "call_module")

    # union-find over spaces -------------------------------------------------------------
    def new_space(self, owner: str, size: int) -> int:
        self.parent.append(len(self.parent))
        self.size.append(size)
        self.owner.append(owner)
        return len(self.parent) - 1

    def find(self, space: int) -> int:
        while self.parent[space] != space:
            self.parent[space] = self.parent[self.parent[space]]
            space = self.parent[space]
        return space

    def union(self, a: int, b: int) -> None:
        """Merge two groups; the root is the older space, so group order follows the graph."""
        ra, rb = sorted((self.find(a), self.find(b)))
        if ra != rb:
            self.parent[rb] = ra
            if rb in self.reasons:
                self.reasons.setdefault(ra, self.reasons.pop(rb))

    def flag(self, space: int | None, reason: str) -> None:
        if space is not None:
            self.reasons.setdefault(self.find(space), reason)

    def flag_all(self, value: Any, reason: str) -> None:
        for layout in _layouts(value):
            for seg in layout.segs:
                self.flag(seg.space, reason)

    # traversal --------------------------------------------------------------------------
    def run(self) -> None:
        for node in self.graph.nodes:
            self.env[node] = self.visit(node)

    def visit(self, node: fx.Node) -> Any:
        args = fx.node.map_arg(node.args, self.env.__getitem__)
        kwargs = fx.node.map_arg(node.kwargs, self.env.__getitem__)
        if node.op == "output":
            self.flag_all(args, "reaches the model output")
            return None
        if node.op in ("placeholder", "get_attr"):
            return None  # fixed channels: the model input, parameters, buffers
        if node.op == "call_module":
            return self.call_module(node, self.modules[node.target], args)
        if not _is_tensor_output(node) or not any(True for _ in _layouts((args, kwargs))):
            return None  # shapes and sizes, or tensors without pruned channels
        return self.call_op(node, args, kwargs)

    # modules ----------------------------------------------------------------------------
    def call_module(self, node: fx.Node, module: nn.Module, args: tuple) -> Any:
        name = node.target
        x = args[0] if args else None
        if self.calls[name] > 1 and _has_state(module):
            self.flag_all(args, f"{name} is called more than once")
            x = None
        if isinstance(module, _WEIGHTED):
            return self.weighted(node, module, x)
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            return self.channelwise(name, x, masked=True)
        if not isinstance(x, _Layout):
            return None
        if isinstance(module, (nn.Flatten, nn.Unflatten)):
            return self.reshape(node, x, name)
        if _keeps_zero(module):
            return x
        if _breaks_zero(module, x.dim, len(_shape(node))):
            return x.nonzero(name)
        self.flag_all(args, f"unsupported module {name} ({type(module).__name__})")
        return None

    def weighted(self, node: fx.Node, module: nn.Module, x: Any) -> _Layout | None:
        """A conv or linear reads its input's channel axis and writes a new space.

        A depth-wise conv writes the channels it reads, so it joins its input's group.
        """
        name = node.target
        axis = 1 if isinstance(module, nn.modules.conv._ConvNd) else len(_shape(node)) - 1
        if isinstance(x, _Layout) and x.dim != axis:
            self.flag_all(x, f"{name} reads a non-channel axis")
            x = None
        mask_point = self.set_mask_point(node)
        if _is_depthwise(module):
            if x is not None and module.bias is not None:
                x = x.nonzero(name)
            return self.channelwise(name, x, masked=mask_point == name)
        self.weight_inputs[name] = x
        if name not in self.space_of:
            self.space_of[name] = self.new_space(name, _out_width(module))
        space = self.space_of[name]
        if self.calls[name] > 1:
            self.flag(space, f"{name} is called more than once")
        if isinstance(module, nn.modules.conv._ConvNd) and (module.transposed or module.groups > 1):
            kind = "transposed conv" if module.transposed else f"grouped conv (groups={module.groups})"
            self.flag(space, f"produced by {kind} {name}")
            self.flag_all(x, f"read by {kind} {name}")
        masked = mask_point == name
        return _Layout(axis, (_Seg(space, 0, self.size[space], masked, "" if masked else name),))

    def channelwise(self, name: str, x: _Layout | None, masked: bool) -> _Layout | None:
        """A BatchNorm or depth-wise conv: output channel c is input channel c.

        Every BatchNorm is a mask point (``BN(0) != 0``); a depth-wise conv is masked
        through the BatchNorm after it, or itself when none follows.
        """
        if x is not None and x.dim != 1:
            self.flag_all(x, f"{name} works on a non-channel axis")
            x = None
        self.channel_inputs[name] = x
        if x is None:
            return None
        return x.zeroed() if masked else x

    def set_mask_point(self, node: fx.Node) -> str:
        """The BatchNorm that alone reads this conv's output, else the conv itself."""
        users = [user for user in node.users if _is_tensor_output(user)]
        follows = (
            len(users) == 1
            and users[0].op == "call_module"
            and isinstance(self.modules[users[0].target], nn.modules.batchnorm._BatchNorm)
        )
        self.mask_point_of[node.target] = users[0].target if follows else node.target
        return self.mask_point_of[node.target]

    # functions and methods --------------------------------------------------------------
    def call_op(self, node: fx.Node, args: tuple, kwargs: dict) -> Any:
        target, where = node.target, _where(node)
        x = args[0] if args else None
        if target in _ADD or target in _MUL or target in _DIV:
            return self.elementwise(node, where)
        if target in _CAT:
            return self.cat(node, where)
        if target is operator.getitem:
            return self.getitem(node, x, node.args[1], where)
        if isinstance(x, _Layout) and _plain(args[1:], kwargs):
            handled = self.channel_op(node, x, where)
            if handled is not _UNHANDLED:
                return handled
        self.flag_all((args, kwargs), f"mixed by {where}")
        return None

    def channel_op(self, node: fx.Node, x: _Layout, where: str) -> Any:
        """Ops on one tensor with pruned channels (the other arguments are plain values)."""
        target = node.target
        if target in _SPLIT:
            return self.split(node, x, where)
        if target in _RESHAPE:
            return self.reshape(node, x, where)
        if target in _PERMUTE:
            return self.permute(node, x)
        if target in _REDUCE:
            return self.reduce(node, x, where)
        if target in _SOFTMAX:
            dim = _arg(node, 1, "dim", None)
            over_channels = dim is None or _axis(dim, len(_shape(node))) == x.dim
            return _UNHANDLED if over_channels else x.nonzero(where)
        if _zero_keeping_call(node):
            return x
        if target in _ZERO_BREAKING_FUNCTIONS or target in _ZERO_BREAKING_METHODS:
            return x.nonzero(where)
        return _UNHANDLED

    def elementwise(self, node: fx.Node, where: str) -> _Layout | None:
        """``a + b``, ``a - b``, ``a * b``, ``a / b`` with broadcasting.

        Operands spanning the channel axis are aligned piece by piece, which ties their
        spaces. Zero-ness: a sum is zero when all terms are, a product when any factor is;
        a term broadcast over the channels (or a nonzero number) makes a sum nonzero.
        """
        out_shape = _shape(node)
        rank, target = len(out_shape), node.target
        raw = list(node.args[:2]) + ([node.kwargs["other"]] if len(node.args) < 2 and "other" in node.kwargs else [])
        operands = [self.operand(arg) for arg in raw]
        dims = {op.layout.dim + rank - len(op.shape) for op in operands if op.layout is not None}
        if len(dims) != 1:
            self.flag_all([op.layout for op in operands], f"mixed by {where}")
            return None
        dim = dims.pop()
        width = out_shape[dim]
        spans = [op.spans(dim, rank, width) for op in operands]
        for op, span in zip(operands, spans):
            if op.layout is not None and not span:
                self.flag_all(op.layout, f"broadcast over channels by {where}")
        full = [op.segs(width) for op, span in zip(operands, spans) if span]
        if not full:
            return None
        segs = full[0]
        for other in full[1:]:
            segs = tuple(self.combine(a, b, target, where) for a, b in _pieces(segs, other))
        partial = [op for op, span in zip(operands, spans) if not span]
        if target in _ADD and any(op.shape is not None or op.value != 0 for op in partial):
            segs = tuple(_lose(seg, where) for seg in segs)
        if target in _DIV and not spans[0]:
            segs = tuple(_lose(seg, where) for seg in segs)
        return _Layout(dim, segs)

    def operand(self, arg: Any) -> _Operand:
        if isinstance(arg, fx.Node):
            value = self.env[arg]
            return _Operand(value if isinstance(value, _Layout) else None, _shape(arg), None)
        return _Operand(None, None, arg)

    def combine(self, a: _Seg, b: _Seg, target: Any, where: str) -> _Seg:
        """One aligned piece of two operands: tie their spaces and combine their zero-ness."""
        self.tie(a, b, where)
        if target in _MUL:
            zero = a.zero or b.zero
        elif target in _DIV:  # 0 / y is zero; x / 0 is not
            zero = a.zero and not (b.zero and b.space is not None)
        else:
            zero = a.zero and b.zero
        seg = a if a.space is not None else b
        return replace(seg, zero=zero, lost="" if zero else (a.lost or b.lost or where))

    def tie(self, a: _Seg, b: _Seg, where: str) -> None:
        """Channels meeting in one elementwise op must be pruned together."""
        if a.space is None and b.space is None:
            return
        if a.space is None or b.space is None:
            self.flag(a.space if b.space is None else b.space, f"combined with fixed channels by {where}")
            return
        ra, rb = self.find(a.space), self.find(b.space)
        if ra == rb and a.start == b.start:
            return
        if ra != rb and a.start == b.start == 0 and a.length == self.size[ra] == self.size[rb]:
            self.union(ra, rb)
            return
        self.flag(ra, f"only partly aligned with {self.owner[rb]} by {where}")
        self.flag(rb, f"only partly aligned with {self.owner[ra]} by {where}")

    def cat(self, node: fx.Node, where: str) -> _Layout | None:
        """Concatenation along the channels joins the layouts; along another axis it ties them."""
        tensors = node.args[0] if node.args else node.kwargs["tensors"]
        rank = len(_shape(node))
        dim = _axis(_arg(node, 1, "dim", 0), rank)
        layouts = [self.env[t] if isinstance(self.env[t], _Layout) else None for t in tensors]
        dims = {layout.dim for layout in layouts if layout is not None}
        if len(dims) != 1:
            self.flag_all(layouts, f"mixed by {where}")
            return None
        channel = dims.pop()
        parts = [layout.segs if layout else _fixed(_shape(t)[channel]) for t, layout in zip(tensors, layouts)]
        if dim == channel:
            return _Layout(channel, tuple(seg for part in parts for seg in part))
        segs = parts[0]
        for other in parts[1:]:
            segs = tuple(self.combine(a, b, operator.add, where) for a, b in _pieces(segs, other))
        return _Layout(channel, segs)

    def split(self, node: fx.Node, x: _Layout, where: str) -> tuple[_Layout, ...]:
        """Split sizes are constants of the model's code: the channels there cannot shrink."""
        dim = _axis(_arg(node, 2, "dim", 0), len(_shape(node.args[0])))
        sizes = [meta.shape[dim] for meta in node.meta["tensor_meta"]]
        if dim != x.dim:
            return tuple(x for _ in sizes)
        self.flag_all(x, f"split by channel counts fixed in the code ({where})")
        bounds = [0, *_ends(tuple(_Seg(None, 0, size) for size in sizes))]
        return tuple(_Layout(x.dim, _cut(x.segs, lo, hi)) for lo, hi in zip(bounds, bounds[1:]))

    def getitem(self, node: fx.Node, x: Any, index: Any, where: str) -> Any:
        """An element of a split, or indexing a tensor (``index`` as traced, bounds may be nodes)."""
        if isinstance(x, (tuple, list)):
            return x[index]
        if not isinstance(x, _Layout):
            return None
        at, dropped = _index_at(index, x.dim, len(_shape(node.args[0])))
        if at == slice(None):
            return _Layout(x.dim - dropped, x.segs)
        static = isinstance(at, slice) and not any(isinstance(b, fx.Node) for b in (at.start, at.stop, at.step))
        if static and at.step in (None, 1):
            start, stop, _ = at.indices(x.width)
            self.flag_all(x, f"sliced by channel indices fixed in the code ({where})")
            return _Layout(x.dim - dropped, _cut(x.segs, start, stop))
        self.flag_all(x, f"indexed by {where}")
        return None

    def reshape(self, node: fx.Node, x: _Layout, where: str) -> _Layout | None:
        """A reshape keeps the channels when their axis and every axis before it are unchanged."""
        before, after = _shape(node.args[0]), _shape(node)
        if before[: x.dim + 1] == after[: x.dim + 1]:
            return x
        self.flag_all(x, f"reshaped by {where}")
        return None

    def permute(self, node: fx.Node, x: _Layout) -> _Layout:
        rank = len(_shape(node))
        dims = node.args[1:]
        if node.target in ("transpose", torch.transpose):
            a, b = (_axis(d, rank) for d in dims[:2])
            return _Layout(b if x.dim == a else a if x.dim == b else x.dim, x.segs)
        order = dims[0] if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
        return _Layout([_axis(d, rank) for d in order].index(x.dim), x.segs)

    def reduce(self, node: fx.Node, x: _Layout, where: str) -> _Layout | None:
        """Means, sums and maxima over other axes keep a zero channel zero."""
        rank = len(_shape(node.args[0]))
        dims = _arg(node, 1, "dim", None)
        keepdim = _arg(node, 2, "keepdim", False)
        listed = dims if isinstance(dims, (tuple, list)) else [dims]
        axes = list(range(rank)) if dims is None else [_axis(d, rank) for d in listed]
        if x.dim in axes:
            self.flag_all(x, f"reduced over channels by {where}")
            return None
        return _Layout(x.dim if keepdim else x.dim - sum(axis < x.dim for axis in axes), x.segs)

    # results ----------------------------------------------------------------------------
    def check_ties(self, ties: list[list[str]]) -> None:
        """Make groups unprunable where Torch-Pruning ties producers that fx keeps apart."""
        for tie in ties:
            roots = {self.find(self.space_of[name]) for name in tie if name in self.space_of}
            for root in roots:
                others = sorted(self.owner[r] for r in roots - {root})
                if others:
                    self.flag(root, f"tied to {others[0]} by Torch-Pruning")

    def resolve(self) -> None:
        """Members and consumers per group root; partial uses and nonzero reads become reasons."""
        for name, x in self.channel_inputs.items():
            root = self.whole_space(x)
            if root is not None:
                self.members.setdefault(root, []).append(name)
            elif x is not None:
                self.flag_all(x, f"{name} spans channels of several groups")
        for name, x in self.weight_inputs.items():
            offset = 0
            for seg in x.segs if x is not None else ():
                if seg.space is not None:
                    root = self.find(seg.space)
                    if seg.start == 0 and seg.length == self.size[root]:
                        self.consumers.setdefault(root, []).append(Consumer(name, offset))
                        if not seg.zero:
                            self.flag(root, f"nonzero when pruned at the input of {name} (after {seg.lost})")
                    else:
                        self.flag(root, f"{name} reads only part of it")
                offset += seg.length

    def whole_space(self, x: _Layout | None) -> int | None:
        """The group root when ``x`` is exactly one whole group, else None."""
        if x is None or len(x.segs) != 1 or x.segs[0].space is None:
            return None
        seg = x.segs[0]
        root = self.find(seg.space)
        return root if seg.start == 0 and seg.length == self.size[root] else None

    def candidates(self, selected: Callable[[str], bool]) -> list[int]:
        """Group roots that are prunable so far: no reason against them, every producer selected."""
        roots = {self.find(space) for space in range(len(self.parent))} - set(self.reasons)
        return sorted(root for root in roots if all(selected(name) for name in self.producers(root)))

    def producers(self, root: int) -> tuple[str, ...]:
        return tuple(name for name, space in self.space_of.items() if self.find(space) == root)

    def build(
        self, model: nn.Module, macs: dict[str, int], selected: Callable[[str], bool], input_shape: tuple[int, ...]
    ) -> ChannelGraph:
        """Groups in graph order (by their oldest space) and one site per conv/linear called."""
        roots = sorted({self.find(space) for space in range(len(self.parent))})
        index = {root: i for i, root in enumerate(roots)}
        groups = tuple(self.group(i, root, selected) for i, root in enumerate(roots))
        sites = []
        for name, module in model.named_modules():
            if name not in macs:
                continue
            if _is_depthwise(module):
                root = self.whole_space(self.channel_inputs.get(name))
                group = index.get(root)
                in_parts = ((group, module.in_channels),)
            else:
                space = self.space_of.get(name)
                group = None if space is None else index[self.find(space)]
                in_parts = self.in_parts(self.weight_inputs.get(name), _in_width(module), index)
            sites.append(_site(name, module, group, in_parts, macs[name]))
        return ChannelGraph(groups, tuple(sites), input_shape)

    def group(self, i: int, root: int, selected: Callable[[str], bool]) -> ChannelGroup:
        producers = self.producers(root)
        own = self.members.get(root, [])
        masked = [self.mask_point_of[name] for name in producers]
        masked += [self.mask_point_of.get(name, name) for name in own]
        reason = self.reasons.get(root, "")
        outside = [name for name in producers if not selected(name)]
        if not reason and outside:
            reason = f"{outside[0]} is not among the prunable layers"
        return ChannelGroup(
            index=i,
            size=self.size[root],
            producers=producers,
            mask_points=tuple(dict.fromkeys(masked)),
            members=tuple(own),
            consumers=tuple(self.consumers.get(root, [])),
            prunable=not reason,
            reason=reason,
        )

    def in_parts(self, x: _Layout | None, width: int, index: dict[int, int]) -> tuple[tuple[int | None, int], ...]:
        if x is None:
            return ((None, width),)
        parts: list[tuple[int | None, int]] = []
        for seg in x.segs:
            root = None if seg.space is None else self.find(seg.space)
            whole = root is not None and seg.start == 0 and seg.length == self.size[root]
            group = index[root] if whole else None
            if group is None and parts and parts[-1][0] is None:
                parts[-1] = (None, parts[-1][1] + seg.length)
            else:
                parts.append((group, seg.length))
        return tuple(parts)


_UNHANDLED = object()


def _site(name: str, module: nn.Module, out_group: int | None, in_parts: tuple, macs_per_pair: int) -> ConvSite:
    groups = getattr(module, "groups", 1)
    return ConvSite(
        name=name,
        out_group=out_group,
        in_parts=in_parts,
        groups=groups,
        depthwise=_is_depthwise(module),
        macs_per_pair=macs_per_pair,
        out_channels=_out_width(module),
    )


# --------------------------------------------------------------------------- fx helpers


def _shape(node: Any) -> tuple[int, ...]:
    meta = node.meta.get("tensor_meta") if isinstance(node, fx.Node) else None
    return tuple(meta.shape) if isinstance(meta, TensorMetadata) else ()


def _is_tensor_output(node: fx.Node) -> bool:
    meta = node.meta.get("tensor_meta")
    return isinstance(meta, TensorMetadata) or (
        isinstance(meta, (tuple, list)) and any(isinstance(m, TensorMetadata) for m in meta)
    )


def _has_state(module: nn.Module) -> bool:
    return any(True for _ in module.parameters(recurse=False)) or any(True for _ in module.buffers(recurse=False))


def _where(node: fx.Node) -> str:
    """``reshape in trans.0.attn``: the op and the module whose forward calls it."""
    op = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", str(node.target))
    stack = node.meta.get("nn_module_stack") or {}
    path = next(reversed(stack.values()))[0] if stack else ""
    return f"{op} in {path}" if path else f"{op} in forward"


def _axis(dim: int, rank: int) -> int:
    return dim + rank if dim < 0 else dim


def _arg(node: fx.Node, position: int, name: str, default: Any) -> Any:
    """An argument given by position (counting the tensor) or by keyword."""
    if name in node.kwargs:
        return node.kwargs[name]
    return node.args[position] if len(node.args) > position else default


def _plain(args: tuple, kwargs: dict) -> bool:
    """No other tensor with pruned channels among the arguments."""
    return not any(True for _ in _layouts((args, kwargs)))


def _index_at(index: Any, dim: int, rank: int) -> tuple[Any, int]:
    """The index applied to axis ``dim`` and how many axes before it the indexing drops."""
    items = index if isinstance(index, tuple) else (index,)
    if not all(isinstance(item, (int, slice, type(Ellipsis))) for item in items):
        return None, 0  # new axes, tensors, traced values
    if Ellipsis in items:
        e = items.index(Ellipsis)
        items = items[:e] + (slice(None),) * (rank - len(items) + 1) + items[e + 1 :]
    at = items[dim] if dim < len(items) else slice(None)
    return at, sum(isinstance(item, int) for item in items[:dim])


def _keeps_zero(module: nn.Module) -> bool:
    """Channel-wise and ``f(0) = 0``."""
    if isinstance(module, nn.Hardtanh):  # includes ReLU6
        return module.min_val <= 0 <= module.max_val
    if isinstance(module, nn.ConstantPad1d | nn.ConstantPad2d | nn.ConstantPad3d):
        return module.value == 0
    return isinstance(module, _ZERO_KEEPING_MODULES)


def _breaks_zero(module: nn.Module, channel_dim: int, rank: int) -> bool:
    """Channel-wise but not zero-keeping; a softmax over the channels mixes them instead."""
    if isinstance(module, (nn.Softmax, nn.LogSoftmax)):
        return module.dim is not None and _axis(module.dim, rank) != channel_dim
    return isinstance(module, _ZERO_BREAKING_MODULES)


def _zero_keeping_call(node: fx.Node) -> bool:
    """A function or method call that is channel-wise with ``f(0) = 0`` (clamps and pads checked)."""
    target = node.target
    if target in (F.hardtanh, torch.clamp, "clamp", "clamp_min"):
        low = _arg(node, 1, "min_val" if target is F.hardtanh else "min", -1.0 if target is F.hardtanh else None)
        high = _arg(node, 2, "max_val" if target is F.hardtanh else "max", 1.0 if target is F.hardtanh else None)
        return (low is None or low <= 0) and (high is None or high >= 0)
    if target is F.pad:
        return _arg(node, 2, "mode", "constant") != "constant" or not _arg(node, 3, "value", None)
    return target in _ZERO_KEEPING_FUNCTIONS or target in _ZERO_KEEPING_METHODS


def _out_width(module: nn.Module) -> int:
    return module.out_features if isinstance(module, nn.Linear) else module.out_channels


def _in_width(module: nn.Module) -> int:
    return module.in_features if isinstance(module, nn.Linear) else module.in_channels


# --------------------------------------------------------------------------- MACs


def _macs_per_pair(model: nn.Module, x: torch.Tensor) -> dict[str, int]:
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

    handles = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, _WEIGHTED)]
    try:
        with _eval_mode(model), torch.no_grad():
            model(x)
    except Exception as exc:
        raise EdgepruneError(f"cannot run the model on an input of shape {tuple(x.shape)}: {_one_line(exc)}") from exc
    finally:
        for handle in handles:
            handle.remove()
    return dict(macs)


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode inside, every module's own mode restored after."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


# --------------------------------------------------------------------------- Torch-Pruning


@dataclass(frozen=True)
class _TPItem:
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
            and isinstance(self.module, _WEIGHTED)
            and not _is_depthwise(self.module)
            and len(self.idxs) == _out_width(self.module)
        )


def _torch_pruning_groups(
    model: nn.Module, x: torch.Tensor, roots: list[str] | None = None
) -> list[list[_TPItem]] | None:
    """Torch-Pruning's groups rooted at ``roots`` (default: every conv/linear not in an earlier group).

    Roots on which Torch-Pruning 1.6 fails (its index mapping raises on some graphs) are
    skipped; None when it cannot trace the model at all. Its groups cost time in proportion
    to channels times graph size (seconds for TopFormer's attention), hence ``roots``.
    """
    names = {module: name for name, module in model.named_modules()}
    with warnings.catch_warnings(), torch.enable_grad(), _eval_mode(model):
        warnings.simplefilter("ignore")
        try:
            # An input that requires grad gives every op a grad_fn, even with frozen weights.
            traced_input = x.detach().clone().requires_grad_(x.is_floating_point())
            graph = tp.DependencyGraph().build_dependency(model, example_inputs=(traced_input,), verbose=False)
        except Exception:
            return None
        groups: list[list[_TPItem]] = []
        covered: set[str] = set()
        wanted = None if roots is None else set(roots)
        for name, module in model.named_modules():
            if not isinstance(module, _WEIGHTED) or name in covered or module not in graph.module2node:
                continue
            if wanted is not None and name not in wanted:
                continue
            pruner = graph.get_pruner_of_module(module)
            try:
                group = graph.get_pruning_group(module, pruner.prune_out_channels, list(range(_out_width(module))))
            except Exception:
                continue
            items = [
                _TPItem(
                    name=names.get(item.dep.target.module, repr(item.dep.target.module)),
                    module=item.dep.target.module,
                    out=graph.is_out_channel_pruning_fn(item.dep.handler),
                    idxs=tuple(item.idxs),
                    root_idxs=tuple(item.root_idxs),
                    node=item.dep.target,
                )
                for item in group.items
            ]
            covered.update(item.name for item in items if item.out and isinstance(item.module, _WEIGHTED))
            groups.append(items)
    return groups


def _torch_pruning_ties(model: nn.Module, x: torch.Tensor, roots: list[str]) -> list[list[str]]:
    """The convs/linears whose outputs Torch-Pruning prunes together with each of ``roots``."""
    if not roots:
        return []
    groups = _torch_pruning_groups(model, x, roots) or []
    return [[item.name for item in items if item.whole_producer] for items in groups]


# Autograd nodes (Torch-Pruning's elementwise ops) that keep a zero channel zero.
_TP_ZERO_KEEPING = (
    "ReluBackward", "HardtanhBackward", "HardswishBackward", "GeluBackward", "SiluBackward",
    "LeakyReluBackward", "EluBackward", "MaxPool2DWithIndicesBackward", "AvgPool2DBackward",
    "AdaptiveAvgPool2DBackward", "UpsampleBilinear2DBackward", "UpsampleNearest2DBackward",
)  # fmt: skip


def _fallback_graph(
    model: nn.Module, x: torch.Tensor, macs: dict[str, int], selected: Callable[[str], bool], why: str
) -> ChannelGraph:
    """Without an fx graph zeros cannot be followed: prune only plain conv -> BN -> act -> conv chains.

    Without Torch-Pruning's graph either, every conv/linear output is a fixed group of its own.
    """
    tp_groups = _torch_pruning_groups(model, x)
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
            width = _in_width(module)
            in_parts = ((read[name], width),) if name in read else ((None, width),)
            sites.append(_site(name, module, out_group.get(name), in_parts, macs[name]))
    return ChannelGraph(tuple(groups), tuple(sites), tuple(x.shape))


def _fixed_graph(model: nn.Module, x: torch.Tensor, macs: dict[str, int], reason: str) -> ChannelGraph:
    groups, sites = [], []
    for name, module in model.named_modules():
        if name not in macs:
            continue
        out_group = None
        if not _is_depthwise(module):
            out_group = len(groups)
            groups.append(ChannelGroup(out_group, _out_width(module), (name,), (name,), (), (), False, reason))
        sites.append(_site(name, module, out_group, ((None, _in_width(module)),), macs[name]))
    return ChannelGraph(tuple(groups), tuple(sites), tuple(x.shape))


def _plain_chain(items: list[_TPItem]) -> tuple[str, tuple[Consumer, ...]] | None:
    """(mask point, consumers) when the group is one conv -> [BN] -> zero-keeping ops -> convs."""
    producers = [item for item in items if item.out and isinstance(item.module, _WEIGHTED)]
    if len(producers) != 1 or not producers[0].whole_producer or _is_grouped(producers[0].module):
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
        if isinstance(item.module, _WEIGHTED) and not item.out:
            plain = not isinstance(item.module, nn.modules.conv._ConvNd) or item.module.groups == 1
            if not plain or item.idxs != item.root_idxs or _in_width(item.module) != size:
                return None
            consumers.append(Consumer(item.name, 0))
        elif not isinstance(item.module, tp.ops._ElementWiseOp) or not str(item.module._grad_fn).startswith(
            _TP_ZERO_KEEPING
        ):
            return None
    mask_point = norms[0].name if norms else producer.name
    return mask_point, tuple(consumers)


def _reaches_output(items: list[_TPItem]) -> bool:
    """An output op in the group, or a producer whose output nothing reads (it is returned)."""
    return any(
        isinstance(item.module, tp.ops._OutputOp) or (item.whole_producer and not item.node.outputs) for item in items
    )


def _is_channelwise(module: Any) -> bool:
    return isinstance(module, nn.modules.batchnorm._BatchNorm) or _is_depthwise(module)
