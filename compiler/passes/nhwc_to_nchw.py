"""Rewrite an NHWC graph (TFLite's layout) into the NCHW one edgeprune's passes and schedules take.

TVM's TFLite frontend keeps the file's layout: NHWC activations, HWIO/HWOI/OHWI weights. Every
rule of ``compiler.schedules`` and every graph pass reads NCHW/OIHW convs, so the graph is
converted before they run. TVM's ``ConvertLayout`` does this for convs but stops at ops without
a layout rule (``clip``, hard-swish's bound; ``pad``, BlazeFace's channel padding) and at a 1-d
bias added to a 4-d map: it transposes back to NHWC around each of them, which left dozens of
transposes between the kernels of a MediaPipe model.

This pass converts tensor by tensor instead. A 4-d tensor is held in NCHW from the first conv,
pool or resize that makes it, and stays there through every op whose NCHW form is known here:
the layout ops above, elementwise ops (constants transposed, lower-rank ones broadcast to 4-d
first), pad, concat, PReLU and keep-dims reductions. Any other op gets its inputs back in NHWC
and runs as written, so the result is always the original function; the function's inputs
and outputs keep the file's layout (one transpose at each end).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tvm
from tvm import relax

from edgeprune.compiler.passes.structure import rewrite_relax_functions

TO_NCHW = (0, 3, 1, 2)  # NCHW axis i is NHWC axis TO_NCHW[i]
TO_NHWC = (0, 2, 3, 1)

ELEMENTWISE_BINARY = frozenset({
    "relax.add", "relax.subtract", "relax.multiply", "relax.divide", "relax.maximum", "relax.minimum",
    "relax.power", "relax.floor_divide",
})
ELEMENTWISE_UNARY = frozenset({
    "relax.nn.relu", "relax.nn.relu6", "relax.nn.leakyrelu", "relax.nn.gelu", "relax.nn.gelu_tanh", "relax.nn.silu",
    "relax.sigmoid", "relax.tanh", "relax.clip", "relax.exp", "relax.log", "relax.sqrt", "relax.rsqrt",
    "relax.square", "relax.abs", "relax.negative", "relax.erf", "relax.floor", "relax.ceil", "relax.round",
    "relax.astype",
})
REDUCTIONS = frozenset({"relax.mean", "relax.sum", "relax.max", "relax.min"})


def _rank(expr: relax.Expr) -> int:
    ty = expr.ty
    return ty.ndim if isinstance(ty, relax.TensorType) else -1


def _axis(nhwc_axis: int) -> int:
    """The NCHW position of NHWC axis ``nhwc_axis``."""
    return TO_NCHW.index(nhwc_axis % 4)


def _kernel_to(weight: relax.Expr, layout: str, wanted: str) -> relax.Expr:
    """``weight`` (in ``layout``, e.g. HWIO) permuted to ``wanted`` (e.g. OIHW)."""
    axes = [layout.index(c) for c in wanted]
    if isinstance(weight, tvm.ir.expr.Constant):
        return relax.const(np.ascontiguousarray(np.transpose(weight.value.numpy(), axes)))
    return relax.op.permute_dims(weight, axes)


class _Converter:
    """Re-emits one function's bindings; ``nchw`` holds the vars now computed in NCHW."""

    def __init__(self, bb: relax.BlockBuilder) -> None:
        self.bb = bb
        self.new: dict[relax.Var, relax.Expr] = {}
        self.nchw: set[relax.Var] = set()
        # one transpose per var and direction, however many consumers it has
        self.transposed: dict[tuple[relax.Var, bool], relax.Var] = {}
        self.rules: dict[str, Callable[[relax.Call], relax.Expr | None]] = {
            "relax.nn.conv2d": self._conv2d,
            "relax.nn.conv2d_transpose": self._conv2d_transpose,
            "relax.nn.max_pool2d": self._pool,
            "relax.nn.avg_pool2d": self._pool,
            "relax.image.resize2d": self._resize,
            "relax.nn.pad": self._pad,
            "relax.concat": self._concat,
            "relax.nn.prelu": self._prelu,
            **{op: self._binary for op in ELEMENTWISE_BINARY},
            **{op: self._unary for op in ELEMENTWISE_UNARY},
            **{op: self._reduction for op in REDUCTIONS},
        }

    # --- operands -------------------------------------------------------------------------

    def is_nchw(self, expr: relax.Expr) -> bool:
        return isinstance(expr, relax.Var) and expr in self.nchw

    def plain(self, expr: relax.Expr) -> relax.Expr:
        """``expr`` in its original layout."""
        if isinstance(expr, relax.Var) and expr in self.new:
            return self._transposed(expr, to_nchw=False) if expr in self.nchw else self.new[expr]
        if isinstance(expr, relax.Tuple):
            return relax.Tuple([self.plain(f) for f in expr.fields])
        return expr

    def as_nchw(self, expr: relax.Expr) -> relax.Expr:
        """A 4-d (or lower-rank, broadcast) operand of an NHWC op, in NCHW."""
        if self.is_nchw(expr):
            return self.new[expr]
        rank = _rank(expr)
        if rank == 0:
            return self.plain(expr)
        if isinstance(expr, tvm.ir.expr.Constant):
            value = expr.value.numpy()
            value = value.reshape((1,) * (4 - value.ndim) + value.shape)
            return relax.const(np.ascontiguousarray(value.transpose(TO_NCHW)))
        if rank == 4 and isinstance(expr, relax.Var):
            return self._transposed(expr, to_nchw=True)
        x = self.plain(expr)
        if rank < 4:
            shape = [int(d) for d in expr.ty.shape.values]
            x = relax.op.reshape(x, [1] * (4 - rank) + shape)
        return self.bb.emit(relax.op.permute_dims(x, TO_NCHW))

    def _transposed(self, var: relax.Var, to_nchw: bool) -> relax.Var:
        key = (var, to_nchw)
        if key not in self.transposed:
            self.transposed[key] = self.bb.emit(relax.op.permute_dims(self.new[var], TO_NCHW if to_nchw else TO_NHWC))
        return self.transposed[key]

    # --- rules: each returns the NCHW result, or None to run the op in NHWC -------------------

    def _conv2d(self, call: relax.Call) -> relax.Expr | None:
        a = call.attrs
        if a.data_layout != "NHWC" or a.out_layout not in ("", "NHWC"):
            return None
        return relax.op.nn.conv2d(
            self.as_nchw(call.args[0]), _kernel_to(call.args[1], a.kernel_layout, "OIHW"), a.strides, a.padding,
            a.dilation, a.groups, "NCHW", "OIHW", "NCHW", a.out_dtype,
        )

    def _conv2d_transpose(self, call: relax.Call) -> relax.Expr | None:
        a = call.attrs
        if a.data_layout != "NHWC" or a.out_layout not in ("", "NHWC"):
            return None
        return relax.op.nn.conv2d_transpose(
            self.as_nchw(call.args[0]), _kernel_to(call.args[1], a.kernel_layout, "IOHW"), a.strides, a.padding,
            a.output_padding, a.dilation, a.groups, "NCHW", "IOHW", "NCHW", a.out_dtype,
        )

    def _pool(self, call: relax.Call) -> relax.Expr | None:
        a = call.attrs
        if a.layout != "NHWC" or a.out_layout not in ("", "NHWC"):
            return None
        pool = relax.op.nn.max_pool2d if call.op.name == "relax.nn.max_pool2d" else relax.op.nn.avg_pool2d
        return pool(self.as_nchw(call.args[0]), a.pool_size, a.strides, a.padding, a.dilation, a.ceil_mode,
                    a.count_include_pad, "NCHW", "NCHW")

    def _resize(self, call: relax.Call) -> relax.Expr | None:
        a = call.attrs
        if a.layout != "NHWC":
            return None
        return relax.op.image.resize2d(
            self.as_nchw(call.args[0]), call.args[1], [float(r) for r in a.roi], "NCHW", a.method,
            a.coordinate_transformation_mode, a.rounding_method, a.cubic_alpha, a.cubic_exclude, a.extrapolation_value,
            a.out_dtype,
        )

    def _pad(self, call: relax.Call) -> relax.Expr | None:
        # a 4-d map is padded in NCHW even when it comes in NHWC (the model's input): the conv
        # reading it then folds the pad into its own (``fold_pad_into_conv``)
        if _rank(call.args[0]) != 4:
            return None
        widths = [int(w) for w in call.attrs.pad_width]
        pairs = [widths[2 * i: 2 * i + 2] for i in TO_NCHW]
        return relax.op.nn.pad(self.as_nchw(call.args[0]), [w for p in pairs for w in p], call.attrs.pad_mode,
                               float(call.attrs.pad_value))

    def _concat(self, call: relax.Call) -> relax.Expr | None:
        fields = call.args[0].fields if isinstance(call.args[0], relax.Tuple) else None
        if not fields or not any(self.is_nchw(f) for f in fields) or any(_rank(f) != 4 for f in fields):
            return None
        return relax.op.concat([self.as_nchw(f) for f in fields], _axis(int(call.attrs.axis)))

    def _prelu(self, call: relax.Call) -> relax.Expr | None:
        if not self.is_nchw(call.args[0]):
            return None
        return relax.op.nn.prelu(self.new[call.args[0]], self.plain(call.args[1]), _axis(int(call.attrs.axis)))

    def _binary(self, call: relax.Call) -> relax.Expr | None:
        if _rank(call) != 4 or not any(self.is_nchw(a) for a in call.args):
            return None
        return relax.Call(call.op, [self.as_nchw(a) for a in call.args], call.attrs, call.ty_args)

    def _unary(self, call: relax.Call) -> relax.Expr | None:
        if not self.is_nchw(call.args[0]):
            return None
        return relax.Call(call.op, [self.new[call.args[0]], *call.args[1:]], call.attrs, call.ty_args)

    def _reduction(self, call: relax.Call) -> relax.Expr | None:
        a = call.attrs
        if not self.is_nchw(call.args[0]) or not a.keepdims or a.axis is None:
            return None
        reduce = {"relax.mean": relax.op.mean, "relax.sum": relax.op.sum, "relax.max": relax.op.max,
                  "relax.min": relax.op.min}[call.op.name]
        return reduce(self.new[call.args[0]], sorted(_axis(int(i)) for i in a.axis), keepdims=True)

    # --- bindings ---------------------------------------------------------------------------

    def bind(self, var: relax.Var, value: relax.Expr) -> None:
        rule = self.rules.get(value.op.name) if isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.Op) else None
        converted = rule(value) if rule is not None else None
        if converted is not None:
            self.new[var] = self.bb.emit(converted, var.name)
            self.nchw.add(var)
            return
        if isinstance(value, relax.Call):
            args = [self.plain(a) for a in value.args]
            value = relax.Call(value.op, args, value.attrs, value.ty_args)
        elif isinstance(value, relax.TupleGetItem):
            value = relax.TupleGetItem(self.plain(value.tuple_value), value.index)
        else:
            value = self.plain(value)
        self.new[var] = self.bb.emit(value, var.name)


def _rewrite(func: relax.Function) -> relax.Function:
    bindings = [b for block in func.body.blocks for b in block.bindings]
    if not all(isinstance(b, relax.VarBinding) for b in bindings):
        return func  # match_cast: shapes the frontend could not make static, left as they are
    bb = relax.BlockBuilder()
    with bb.function("main", list(func.params), pure=func.is_pure):
        with bb.dataflow():
            converter = _Converter(bb)
            for param in func.params:
                converter.new[param] = param
            for binding in bindings:
                converter.bind(binding.var, binding.value)
            output = bb.emit_output(converter.plain(func.body.body))
        bb.emit_func_output(output)
    rewritten = bb.get()["main"].without_attr("global_symbol")
    return rewritten.with_attrs(dict(func.attrs)) if func.attrs else rewritten


@tvm.transform.module_pass(opt_level=0, name="NHWCToNCHW")
def NHWCToNCHW(mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:  # noqa: N802
    """Convert every Relax function's NHWC ops to NCHW; inputs and outputs keep their layout."""
    return rewrite_relax_functions(mod, _rewrite)
