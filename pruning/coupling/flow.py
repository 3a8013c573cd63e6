"""The fx channel-flow analysis: channel groups, mask points and consumers on a traced graph.

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
* Between mask points the zeros are followed along the graph (the ops that keep a zero
  channel zero are listed in ``ops``): a product is zero when either factor is; a sum only
  when all terms are (the terms of a residual add share a group, so they are masked
  together). A group whose pruned channels may reach a conv/linear input nonzero is not
  prunable.

TopFormer's semantic injection ``local * h_sigmoid(act(global)) + embed(global)`` is
exact this way: the gate ``h_sigmoid(0) = 0.5`` is nonzero but multiplies a zero, and
both terms of the sum are masked.

Not prunable: groups that reach the model output (the classifier), channels reshaped into
attention heads or mixed by any op the analysis does not know, channels split by sizes
fixed in the model's code (``split``/``chunk``/slicing; a slice of the whole axis is
none), groups read or written by grouped convs (the slice would need the same number of
channels in every conv group), channels only partly aligned with another group
(TopFormer's pyramid outputs: concatenated into the transformer's residual stream, whose
convs write all its channels at once, and no group can be part of another's output),
modules called more than once, and modules the slicer cannot cut (LayerNorm, GroupNorm,
PReLU, transposed convs, ...).
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import fx, nn

from edgeprune.pruning.coupling.fx_utils import arg, axis, has_state, index_at, is_tensor_output, op_location, shape
from edgeprune.pruning.coupling.graph import ChannelGraph, ChannelGroup, Consumer
from edgeprune.pruning.coupling.macs import site
from edgeprune.pruning.coupling.ops import (
    ADD,
    CAT,
    DIV,
    MUL,
    PERMUTE,
    REDUCE,
    RESHAPE,
    SOFTMAX,
    SPLIT,
    WEIGHTED,
    ZERO_BREAKING_FUNCTIONS,
    ZERO_BREAKING_METHODS,
    breaks_zero,
    in_width,
    is_depthwise,
    keeps_zero,
    out_width,
    zero_keeping_call,
)
from edgeprune.pruning.coupling.segments import Layout, Seg, cut, ends, fixed, layouts, lose, pieces


@dataclass(frozen=True)
class _Operand:
    """One argument of an elementwise op: a tensor (with or without a layout) or a number."""

    layout: Layout | None
    shape: tuple[int, ...] | None  # None: a Python number
    value: Any

    def spans(self, dim: int, rank: int, width: int) -> bool:
        """Whether it has the result's full channel axis (rather than broadcasting over it)."""
        if self.shape is None:
            return False
        axis = dim - (rank - len(self.shape))
        return axis >= 0 and self.shape[axis] == width

    def segs(self, width: int) -> tuple[Seg, ...]:
        return self.layout.segs if self.layout is not None else fixed(width)


class ChannelFlow:
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
        self.weight_inputs: dict[str, Layout | None] = {}  # conv/linear (not depth-wise) -> input layout
        self.channel_inputs: dict[str, Layout | None] = {}  # BatchNorm / depth-wise conv -> input layout
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
        for layout in layouts(value):
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
        if not is_tensor_output(node) or not any(True for _ in layouts((args, kwargs))):
            return None  # shapes and sizes, or tensors without pruned channels
        return self.call_op(node, args, kwargs)

    # modules ----------------------------------------------------------------------------
    def call_module(self, node: fx.Node, module: nn.Module, args: tuple) -> Any:
        name = node.target
        x = args[0] if args else None
        if self.calls[name] > 1 and has_state(module):
            self.flag_all(args, f"{name} is called more than once")
            x = None
        if isinstance(module, WEIGHTED):
            return self.weighted(node, module, x)
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            return self.channelwise(name, x, masked=True)
        if not isinstance(x, Layout):
            return None
        if isinstance(module, (nn.Flatten, nn.Unflatten)):
            return self.reshape(node, x, name)
        if keeps_zero(module):
            return x
        if breaks_zero(module, x.dim, len(shape(node))):
            return x.nonzero(name)
        self.flag_all(args, f"unsupported module {name} ({type(module).__name__})")
        return None

    def weighted(self, node: fx.Node, module: nn.Module, x: Any) -> Layout | None:
        """A conv or linear reads its input's channel axis and writes a new space.

        A depth-wise conv writes the channels it reads, so it joins its input's group.
        """
        name = node.target
        axis = 1 if isinstance(module, nn.modules.conv._ConvNd) else len(shape(node)) - 1
        if isinstance(x, Layout) and x.dim != axis:
            self.flag_all(x, f"{name} reads a non-channel axis")
            x = None
        mask_point = self.set_mask_point(node)
        if is_depthwise(module):
            if x is not None and module.bias is not None:
                x = x.nonzero(name)
            return self.channelwise(name, x, masked=mask_point == name)
        self.weight_inputs[name] = x
        if name not in self.space_of:
            self.space_of[name] = self.new_space(name, out_width(module))
        space = self.space_of[name]
        if self.calls[name] > 1:
            self.flag(space, f"{name} is called more than once")
        if isinstance(module, nn.modules.conv._ConvNd) and (module.transposed or module.groups > 1):
            kind = "transposed conv" if module.transposed else f"grouped conv (groups={module.groups})"
            self.flag(space, f"produced by {kind} {name}")
            self.flag_all(x, f"read by {kind} {name}")
        masked = mask_point == name
        return Layout(axis, (Seg(space, 0, self.size[space], masked, "" if masked else name),))

    def channelwise(self, name: str, x: Layout | None, masked: bool) -> Layout | None:
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
        users = [user for user in node.users if is_tensor_output(user)]
        follows = (
            len(users) == 1
            and users[0].op == "call_module"
            and isinstance(self.modules[users[0].target], nn.modules.batchnorm._BatchNorm)
        )
        self.mask_point_of[node.target] = users[0].target if follows else node.target
        return self.mask_point_of[node.target]

    # functions and methods --------------------------------------------------------------
    def call_op(self, node: fx.Node, args: tuple, kwargs: dict) -> Any:
        target, where = node.target, op_location(node)
        x = args[0] if args else None
        if target in ADD or target in MUL or target in DIV:
            return self.elementwise(node, where)
        if target in CAT:
            return self.cat(node, where)
        if target is operator.getitem:
            return self.getitem(node, x, node.args[1], where)
        if isinstance(x, Layout) and _plain(args[1:], kwargs):
            handled = self.channel_op(node, x, where)
            if handled is not _UNHANDLED:
                return handled
        self.flag_all((args, kwargs), f"mixed by {where}")
        return None

    def channel_op(self, node: fx.Node, x: Layout, where: str) -> Any:
        """Ops on one tensor with pruned channels (the other arguments are plain values)."""
        target = node.target
        if target in SPLIT:
            return self.split(node, x, where)
        if target in RESHAPE:
            return self.reshape(node, x, where)
        if target in PERMUTE:
            return self.permute(node, x)
        if target in REDUCE:
            return self.reduce(node, x, where)
        if target in SOFTMAX:
            dim = arg(node, 1, "dim", None)
            over_channels = dim is None or axis(dim, len(shape(node))) == x.dim
            return _UNHANDLED if over_channels else x.nonzero(where)
        if zero_keeping_call(node):
            return x
        if target in ZERO_BREAKING_FUNCTIONS or target in ZERO_BREAKING_METHODS:
            return x.nonzero(where)
        return _UNHANDLED

    def elementwise(self, node: fx.Node, where: str) -> Layout | None:
        """``a + b``, ``a - b``, ``a * b``, ``a / b`` with broadcasting.

        Operands spanning the channel axis are aligned piece by piece, which ties their
        spaces. Zero-ness: a sum is zero when all terms are, a product when any factor is;
        a term broadcast over the channels (or a nonzero number) makes a sum nonzero.
        """
        out_shape = shape(node)
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
            segs = tuple(self.combine(a, b, target, where) for a, b in pieces(segs, other))
        partial = [op for op, span in zip(operands, spans) if not span]
        if target in ADD and any(op.shape is not None or op.value != 0 for op in partial):
            segs = tuple(lose(seg, where) for seg in segs)
        if target in DIV and not spans[0]:
            segs = tuple(lose(seg, where) for seg in segs)
        return Layout(dim, segs)

    def operand(self, arg: Any) -> _Operand:
        if isinstance(arg, fx.Node):
            value = self.env[arg]
            return _Operand(value if isinstance(value, Layout) else None, shape(arg), None)
        return _Operand(None, None, arg)

    def combine(self, a: Seg, b: Seg, target: Any, where: str) -> Seg:
        """One aligned piece of two operands: tie their spaces and combine their zero-ness."""
        self.tie(a, b, where)
        if target in MUL:
            zero = a.zero or b.zero
        elif target in DIV:  # 0 / y is zero; x / 0 is not
            zero = a.zero and not (b.zero and b.space is not None)
        else:
            zero = a.zero and b.zero
        seg = a if a.space is not None else b
        return replace(seg, zero=zero, lost="" if zero else (a.lost or b.lost or where))

    def tie(self, a: Seg, b: Seg, where: str) -> None:
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

    def cat(self, node: fx.Node, where: str) -> Layout | None:
        """Concatenation along the channels joins the layouts; along another axis it ties them."""
        tensors = node.args[0] if node.args else node.kwargs["tensors"]
        rank = len(shape(node))
        dim = axis(arg(node, 1, "dim", 0), rank)
        layouts = [self.env[t] if isinstance(self.env[t], Layout) else None for t in tensors]
        dims = {layout.dim for layout in layouts if layout is not None}
        if len(dims) != 1:
            self.flag_all(layouts, f"mixed by {where}")
            return None
        channel = dims.pop()
        parts = [layout.segs if layout else fixed(shape(t)[channel]) for t, layout in zip(tensors, layouts)]
        if dim == channel:
            return Layout(channel, tuple(seg for part in parts for seg in part))
        segs = parts[0]
        for other in parts[1:]:
            segs = tuple(self.combine(a, b, operator.add, where) for a, b in pieces(segs, other))
        return Layout(channel, segs)

    def split(self, node: fx.Node, x: Layout, where: str) -> tuple[Layout, ...]:
        """Split sizes are constants of the model's code: the channels there cannot shrink."""
        dim = axis(arg(node, 2, "dim", 0), len(shape(node.args[0])))
        sizes = [meta.shape[dim] for meta in node.meta["tensor_meta"]]
        if dim != x.dim:
            return tuple(x for _ in sizes)
        self.flag_all(x, f"split by channel counts fixed in the code ({where})")
        bounds = [0, *ends(tuple(Seg(None, 0, size) for size in sizes))]
        return tuple(Layout(x.dim, cut(x.segs, lo, hi)) for lo, hi in zip(bounds, bounds[1:]))

    def getitem(self, node: fx.Node, x: Any, index: Any, where: str) -> Any:
        """An element of a split, or indexing a tensor (``index`` as traced, bounds may be nodes)."""
        if isinstance(x, (tuple, list)):
            return x[index]
        if not isinstance(x, Layout):
            return None
        at, dropped = index_at(index, x.dim, len(shape(node.args[0])))
        if at == slice(None):
            return Layout(x.dim - dropped, x.segs)
        static = isinstance(at, slice) and not any(isinstance(b, fx.Node) for b in (at.start, at.stop, at.step))
        if static and at.step in (None, 1):
            start, stop, _ = at.indices(x.width)
            if (start, stop) == (0, x.width):  # GhostNet's ``out[:, :oup]`` where the concat is oup wide
                return Layout(x.dim - dropped, x.segs)
            self.flag_all(x, f"sliced by channel indices fixed in the code ({where})")
            return Layout(x.dim - dropped, cut(x.segs, start, stop))
        self.flag_all(x, f"indexed by {where}")
        return None

    def reshape(self, node: fx.Node, x: Layout, where: str) -> Layout | None:
        """A reshape keeps the channels when their axis and every axis before it are unchanged."""
        before, after = shape(node.args[0]), shape(node)
        if before[: x.dim + 1] == after[: x.dim + 1]:
            return x
        self.flag_all(x, f"reshaped by {where}")
        return None

    def permute(self, node: fx.Node, x: Layout) -> Layout:
        rank = len(shape(node))
        dims = node.args[1:]
        if node.target in ("transpose", torch.transpose):
            a, b = (axis(d, rank) for d in dims[:2])
            return Layout(b if x.dim == a else a if x.dim == b else x.dim, x.segs)
        order = dims[0] if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
        return Layout([axis(d, rank) for d in order].index(x.dim), x.segs)

    def reduce(self, node: fx.Node, x: Layout, where: str) -> Layout | None:
        """Means, sums and maxima over other axes keep a zero channel zero."""
        rank = len(shape(node.args[0]))
        dims = arg(node, 1, "dim", None)
        keepdim = arg(node, 2, "keepdim", False)
        listed = dims if isinstance(dims, (tuple, list)) else [dims]
        axes = list(range(rank)) if dims is None else [axis(d, rank) for d in listed]
        if x.dim in axes:
            self.flag_all(x, f"reduced over channels by {where}")
            return None
        return Layout(x.dim if keepdim else x.dim - sum(axis < x.dim for axis in axes), x.segs)

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

    def whole_space(self, x: Layout | None) -> int | None:
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
            if is_depthwise(module):
                root = self.whole_space(self.channel_inputs.get(name))
                group = index.get(root)
                in_parts = ((group, module.in_channels),)
            else:
                space = self.space_of.get(name)
                group = None if space is None else index[self.find(space)]
                in_parts = self.in_parts(self.weight_inputs.get(name), in_width(module), index)
            sites.append(site(name, module, group, in_parts, macs[name]))
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

    def in_parts(self, x: Layout | None, width: int, index: dict[int, int]) -> tuple[tuple[int | None, int], ...]:
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


def _plain(args: tuple, kwargs: dict) -> bool:
    """No other tensor with pruned channels among the arguments."""
    return not any(True for _ in layouts((args, kwargs)))
