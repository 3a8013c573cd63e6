"""From a fused dense conv PrimFunc (conv + its epilogue, after FuseTIR) to the sparse kernel.

The fused function's element-wise epilogue (bias, activation, residual add, ...) is inlined
into one output block (``schedules.base.inline_epilogue``); its stored value is rebuilt over
the sparse kernel's accumulator (``kernel.Epilogue``), so the sparse kernel applies it on each
register tile like the dense schedules do. The parameters that epilogue reads keep their
shapes and become the sparse function's extra arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import tvm
from tvm import s_tir
from tvm.ir import prim

from edgeprune.compiler.schedules.base import NotApplicable, inline_epilogue
from edgeprune.compiler.schedules.conv_analysis import ConvGeometry, analyze_conv
from edgeprune.compiler.sparse.kernel import Epilogue

_LEAVES = (prim.expr.IntImm, prim.expr.FloatImm)
_LOAD = tvm.ir.expr.TensorLoad


@dataclass(frozen=True)
class DenseConv:
    """What the sparse replacement of a fused conv needs from it."""

    geometry: ConvGeometry
    data_index: int  # parameter positions in the fused PrimFunc
    weight_index: int
    epilogue: Epilogue | None
    extra_indices: tuple[int, ...]  # parameters the epilogue reads, in ``epilogue.params`` order


def dense_conv(func: tvm.tirx.PrimFunc) -> DenseConv:
    """Analyse a fused conv; ``NotApplicable`` says why it has no sparse replacement."""
    found = analyze_conv(func)
    if found is None:
        raise NotApplicable("not a convolution")
    geom, anchor, dtype = found
    if geom.groups != 1 or dtype != "float32":
        raise NotApplicable("grouped or not float32")
    # A conv on widened rows (``passes.pad_conv_width``) computes more columns than its kernel
    # outputs; the sparse kernel computes the output's own.
    geom = replace(geom, ow=int(func.params[-1].shape[-1]))
    sch = s_tir.Schedule(func)
    conv = sch.get_sblock(anchor)
    params = list(func.params)
    weight_shape = [geom.co, geom.ci, geom.kh, geom.kw]
    weight_index = data_index = None
    for region in sch.get(conv).reads:
        source = region.source
        index = _param_index(params, source)
        if index is not None and [int(d) for d in source.shape] == weight_shape and weight_index is None:
            weight_index = index
        elif index is not None:
            data_index = index
        else:  # the pad_temp buffer: its block copies the input parameter
            producer = next((b for b in sch.get_producers(conv) if sch.get(b).writes[0].source.same_as(source)), None)
            if producer is not None and len(sch.get(producer).reads) == 1:
                data_index = _param_index(params, sch.get(producer).reads[0].source)
    if weight_index is None or data_index is None:
        raise NotApplicable("conv weight or input is not a parameter")
    out = inline_epilogue(sch, conv)
    if out is None:
        return DenseConv(geom, data_index, weight_index, None, ())
    epilogue, extra = _rebuild(sch, conv, out, params)
    return DenseConv(geom, data_index, weight_index, epilogue, extra)


def _param_index(params: list, buffer) -> int | None:
    return next((i for i, p in enumerate(params[:-1]) if p.same_as(buffer)), None)


def _rebuild(sch: s_tir.Schedule, conv, out, params) -> tuple[Epilogue, tuple[int, ...]]:
    """The output block's stored value as a function of the accumulator and the output indices."""
    block = sch.get(out)
    store = block.body
    if not isinstance(store, tvm.tirx.BufferStore) or not store.buffer.same_as(params[-1]):
        raise NotApplicable("epilogue is not one store to the output")
    conv_buffer = sch.get(conv).writes[0].source
    axes = [iv.var for iv in block.iter_vars]
    if len(axes) != 4 or not all(i.same_as(v) for i, v in zip(store.indices, axes)):
        raise NotApplicable("epilogue output is not indexed by its iteration variables")
    extra: list[int] = []

    def collect(expr) -> None:
        if isinstance(expr, _LOAD):
            if not expr.source.same_as(conv_buffer):
                index = next((i for i, p in enumerate(params[:-1]) if p.same_as(expr.source)), None)
                if index is None:
                    raise NotApplicable(f"epilogue reads {expr.source.name}, which is not a parameter")
                if index not in extra:
                    extra.append(index)
        for child in _children(expr):
            collect(child)

    collect(store.value)
    value = store.value

    def fn(acc, n, f, y, x, bufs):
        binding = {axis: _as(_dtype(axis), e) for axis, e in zip(axes, (n, f, y, x))}
        buffers = {id(params[i]): bufs[k] for k, i in enumerate(extra)}
        return _substitute(value, acc, conv_buffer, axes, binding, buffers, params, extra)

    names = tuple((f"epilogue{k}", tuple(int(d) for d in params[i].shape)) for k, i in enumerate(extra))
    return Epilogue(names, fn), tuple(extra)


def _dtype(expr) -> str:
    return str(expr.ty)


def _as(dtype, expr):
    return expr if _dtype(expr) == str(dtype) else tvm.tirx.Cast(str(dtype), expr)


def _children(expr) -> list:
    """Sub-expressions of ``expr`` (loads: their indices)."""
    if isinstance(expr, (*_LEAVES, tvm.tirx.Var)):
        return []
    if isinstance(expr, _LOAD):
        return list(expr.indices)
    found = [getattr(expr, name) for name in ("a", "b", "condition", "true_value", "false_value", "value") if hasattr(expr, name)]
    return found + list(getattr(expr, "args", []))


def _substitute(expr, acc, conv_buffer, axes, binding, buffers, params, extra):
    def walk(e):
        if isinstance(e, tvm.tirx.Var):
            for axis, value in binding.items():
                if axis.same_as(e):
                    return value
            raise NotApplicable(f"epilogue uses a free variable {e}")
        if isinstance(e, _LEAVES):
            return e
        if isinstance(e, _LOAD):
            if e.source.same_as(conv_buffer):
                if not all(i.same_as(a) for i, a in zip(e.indices, axes)):
                    raise NotApplicable("epilogue reads the conv output at another position")
                return acc
            index = next(i for i in extra if params[i].same_as(e.source))
            return buffers[id(params[index])][tuple(walk(i) for i in e.indices)]
        cls = type(e)
        if hasattr(e, "a") and hasattr(e, "b"):
            return cls(walk(e.a), walk(e.b))
        if isinstance(e, prim.expr.Select):
            return cls(walk(e.condition), walk(e.true_value), walk(e.false_value))
        if isinstance(e, prim.expr.Cast):
            return cls(_dtype(e), walk(e.value))
        if isinstance(e, prim.expr.Not):
            return cls(walk(e.a))
        if isinstance(e, tvm.ir.expr.Call):
            return tvm.tirx.call_intrin(_dtype(e), e.op, *[walk(a) for a in e.args])
        raise NotApplicable(f"epilogue holds a {cls.__name__}, which the sparse kernel does not rebuild")

    return walk(expr)


def zero_fraction(weight: np.ndarray) -> float:
    return float(np.count_nonzero(weight == 0)) / max(1, weight.size)
