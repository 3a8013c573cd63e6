"""Every tensor of an imported model has a static shape, and none is larger than memory.

edgeprune compiles static shapes only: its schedules tile known extents. An operator whose
output size depends on the data (NonMaxSuppression, NonZero, a reshape to a computed shape)
leaves a symbolic dimension in the module; it is named here with its Relax op, instead of
failing later in a schedule that takes the extent as a number. An input shape whose tensors
cannot fit in this machine's memory (``--input-shape 1,3,100000,100000``) is refused before
anything is allocated or compiled.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import tvm
from tvm import relax

from edgeprune.base.errors import EdgepruneError

FLOAT_BYTES = 4

# Relax ops whose results' sizes depend on the data; TVM pads some of them to a static bound,
# but their kernels still size buffers at run time.
DATA_DEPENDENT_OPS = frozenset({
    "relax.nonzero", "relax.unique", "relax.dynamic_strided_slice",
    "relax.vision.all_class_non_max_suppression", "relax.vision.non_max_suppression",
})


def memory_bytes() -> int:
    """Physical memory of this machine."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_input_fits(shape: Sequence[int], path: Path) -> None:
    """The input tensor (and so every map of that size) must fit in a quarter of memory:
    compiling runs the model at that shape, beside the maps it computes from it."""
    size = math.prod(shape) * FLOAT_BYTES
    if size > memory_bytes() // 4:
        raise EdgepruneError(f"{path}: input shape {list(shape)} is a {size / 2**30:.1f} GiB tensor; this machine has "
                             f"{memory_bytes() / 2**30:.1f} GiB of memory")


def _static_dims(ty: relax.Type) -> list[list[int] | None]:
    """Per tensor in ``ty``: its dims, or None where one is not a constant."""
    if isinstance(ty, relax.TupleType):
        return [d for field in ty.fields for d in _static_dims(field)]
    if not isinstance(ty, relax.TensorType):
        return []
    if ty.shape is None or not isinstance(ty.shape, relax.ShapeExpr):
        return [None]
    values = list(ty.shape.values)
    if not all(isinstance(v, tvm.tirx.IntImm) for v in values):
        return [None]
    return [[int(v) for v in values]]


def check_static(mod: tvm.IRModule, path: Path) -> None:
    """Name the first binding of ``main`` whose shape is not static or does not fit in memory."""
    limit = memory_bytes() // 2
    for block in mod["main"].body.blocks:
        for binding in block.bindings:
            value = binding.value
            op = value.op.name if isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.Op) else type(value).__name__
            for dims in _static_dims(binding.var.ty):
                if dims is None or op in DATA_DEPENDENT_OPS:
                    raise EdgepruneError(f"{path}: {op} ({binding.var.name}): the size of its result depends on the "
                                         "data; edgeprune compiles static shapes only")
                if math.prod(dims) * FLOAT_BYTES > limit:
                    raise EdgepruneError(f"{path}: {op} ({binding.var.name}) makes a tensor of shape {dims}, "
                                         f"larger than half this machine's memory")


def check_kernels_static(mod: tvm.IRModule, path: Path) -> None:
    """Name the first kernel (PrimFunc) whose buffers have a shape that depends on the data.

    Operators whose output size depends on the data (NonMaxSuppression, NonZero) keep static
    Relax shapes by padding to the largest size, but their kernels size buffers at run time.
    """
    for gv, func in mod.functions.items():
        if not isinstance(func, tvm.tirx.PrimFunc):
            continue
        for param in func.params:  # buffers (scalars have no shape)
            shape = list(getattr(param, "shape", None) or [])
            if not all(isinstance(d, tvm.tirx.IntImm) for d in shape):
                raise EdgepruneError(f"{path}: kernel {gv.name_hint} sizes its buffers at run time ({shape}), "
                                     "from an operator whose output depends on the data; edgeprune compiles static "
                                     "shapes only")
