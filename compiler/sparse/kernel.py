"""The grouped column-sparse convolution as a TIR PrimFunc (scheduled by ``schedules/cpu/sparse_conv``).

For every group ``g`` of ``format.GroupedColumnSparse`` (``R_g`` rows sharing ``K_g`` kept
columns) the function holds three blocks over ``(n, ., y, x)``::

    gather_g[n, j, y, x] = P[n, ci(c_j), y*sh + ky(c_j)*dh, x*sw + kx(c_j)*dw]     c_j = col_indices[..+j]
    conv_g[n, r, y, x]   = sum_j values[..+r*K_g+j] * gather_g[n, j, y, x]
    out[n, row_order[..+r], y, x] = epilogue(conv_g[n, r, y, x], f)

i.e. an im2col of only the group's kept columns, gathered once per group (the schedule does it
per band of output rows, so it stays in cache), then a dense ``R_g x K_g`` GEMM micro-kernel.
``P`` is the zero-padded input (a ``pad`` block, absent without padding). Writing row ``r`` to
``row_order[r]`` un-permutes the rows on the store itself, so a reordered weight needs no
separate shuffle pass even where the permutation cannot be folded into the next layer.

The group structure (row and column counts) is baked into the loop nests; the weights, column
indices and row order are buffers (arguments), so one compiled kernel serves any weight with
the same structure. The function's ``edgeprune.sparse_conv`` attribute records the structure
for the schedule rule.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tvm
from tvm.script.ir_builder import IRBuilder
from tvm.tirx import Expr as PrimExpr
from tvm.tirx.script.builder import ir as T

from edgeprune.compiler.schedules.conv_analysis import ConvGeometry
from edgeprune.compiler.sparse.format import GroupedColumnSparse

ATTR = "edgeprune.sparse_conv"

# epilogue(acc, n, f, y, x, extra buffers) -> the value stored at out[n, f, y, x]
EpilogueFn = Callable[[PrimExpr, PrimExpr, PrimExpr, PrimExpr, PrimExpr, list], PrimExpr]


@dataclass(frozen=True)
class Epilogue:
    """Element-wise work after the conv: extra input buffers (name, shape) and the stored value."""

    params: tuple[tuple[str, tuple[int, ...]], ...]
    fn: EpilogueFn


def bias_epilogue(co: int, relu: bool = False) -> Epilogue:
    """``acc + bias[f]`` (then ReLU): what the benchmarks and tests use."""

    def fn(acc, n, f, y, x, bufs):
        value = acc + bufs[0][f]
        return T.max(value, T.float32(0.0)) if relu else value

    return Epilogue((("bias", (co,)),), fn)


@dataclass(frozen=True)
class Structure:
    """The loop-nest shape of a grouped sparse conv: rows and kept columns per group."""

    group_rows: tuple[int, ...]
    group_cols: tuple[int, ...]

    @classmethod
    def of(cls, sparse: GroupedColumnSparse) -> "Structure":
        return cls(
            tuple(int(v) for v in (sparse.row_offsets[1:] - sparse.row_offsets[:-1])),
            tuple(int(v) for v in (sparse.col_offsets[1:] - sparse.col_offsets[:-1])),
        )

    @property
    def signature(self) -> int:
        """A stable 31-bit hash of the structure (part of the workload key)."""
        return zlib.crc32(repr((self.group_rows, self.group_cols)).encode()) & 0x7FFFFFFF

    @property
    def stored_values(self) -> int:
        return sum(r * k for r, k in zip(self.group_rows, self.group_cols))


def padded_extent(out: int, stride: int, kernel: int, dilation: int) -> int:
    return (out - 1) * stride + (kernel - 1) * dilation + 1


def sparse_conv_func(
    geom: ConvGeometry, structure: Structure, epilogue: Epilogue | None = None, dtype: str = "float32"
) -> tvm.tirx.PrimFunc:
    """The unscheduled PrimFunc ``main(data, values, col_indices, row_order, *epilogue params, out)``."""
    if geom.groups != 1:
        raise ValueError("grouped convolutions have no single GEMM view; the sparse kernel takes groups=1")
    g = geom
    taps = g.kh * g.kw
    hp, wp = padded_extent(g.oh, g.sh, g.kh, g.dh), padded_extent(g.ow, g.sw, g.kw, g.dw)
    needs_pad = g.pt > 0 or g.pl > 0 or hp > g.h or wp > g.w
    with IRBuilder() as ib:
        with T.prim_func(s_tir=True):
            T.func_name("main")
            data = T.arg("data", T.buffer((g.n, g.ci, g.h, g.w), dtype))
            values = T.arg("values", T.buffer((max(1, structure.stored_values),), dtype))
            cols = T.arg("col_indices", T.buffer((max(1, sum(structure.group_cols)),), "int32"))
            rows = T.arg("row_order", T.buffer((g.co,), "int32"))
            extra = [T.arg(name, T.buffer(shape, dtype)) for name, shape in (epilogue.params if epilogue else ())]
            out = T.arg("out", T.buffer((g.n, g.co, g.oh, g.ow), dtype))
            T.func_attr({
                "tirx.noalias": True,
                ATTR: {
                    "geometry": {k: int(v) for k, v in dataclasses.asdict(g).items()},
                    "group_rows": list(structure.group_rows),
                    "group_cols": list(structure.group_cols),
                },
            })
            with T.sblock("root"):
                source = data
                if needs_pad:
                    source = T.sblock_alloc_buffer((g.n, g.ci, hp, wp), dtype)
                    with T.grid(g.n, g.ci, hp, wp) as (n, c, y, x):
                        with T.sblock("pad"):
                            vn, vc, vy, vx = T.axis.remap("SSSS", [n, c, y, x])
                            inside = tvm.tirx.all(vy >= g.pt, vy < g.h + g.pt, vx >= g.pl, vx < g.w + g.pl)
                            load = data[vn, vc, T.min(T.max(vy - g.pt, 0), g.h - 1), T.min(T.max(vx - g.pl, 0), g.w - 1)]
                            T.buffer_store(source, tvm.tirx.if_then_else(inside, load, T.float32(0.0)), [vn, vc, vy, vx])
                row0 = col0 = val0 = 0
                for index, (nrows, ncols) in enumerate(zip(structure.group_rows, structure.group_cols)):
                    acc = None
                    if ncols:
                        gathered = T.sblock_alloc_buffer((g.n, ncols, g.oh, g.ow), dtype)
                        with T.grid(g.n, ncols, g.oh, g.ow) as (n, j, y, x):
                            with T.sblock(f"gather_{index}"):
                                vn, vj, vy, vx = T.axis.remap("SSSS", [n, j, y, x])
                                c = cols[col0 + vj]
                                tap = T.truncmod(c, taps)
                                value = source[vn, T.truncdiv(c, taps), vy * g.sh + T.truncdiv(tap, g.kw) * g.dh,
                                               vx * g.sw + T.truncmod(tap, g.kw) * g.dw]
                                T.buffer_store(gathered, value, [vn, vj, vy, vx])
                        acc = T.sblock_alloc_buffer((g.n, nrows, g.oh, g.ow), dtype)
                        with T.grid(g.n, nrows, g.oh, g.ow, ncols) as (n, r, y, x, j):
                            with T.sblock(f"conv_{index}"):
                                vn, vr, vy, vx, vj = T.axis.remap("SSSSR", [n, r, y, x, j])
                                with T.init():
                                    T.buffer_store(acc, T.float32(0.0), [vn, vr, vy, vx])
                                product = values[val0 + vr * ncols + vj] * gathered[vn, vj, vy, vx]
                                T.buffer_store(acc, acc[vn, vr, vy, vx] + product, [vn, vr, vy, vx])
                    with T.grid(g.n, nrows, g.oh, g.ow) as (n, r, y, x):
                        with T.sblock(f"out_{index}"):
                            vn, vr, vy, vx = T.axis.remap("SSSS", [n, r, y, x])
                            f = rows[row0 + vr]
                            value = acc[vn, vr, vy, vx] if acc is not None else T.float32(0.0)
                            if epilogue is not None:
                                value = epilogue.fn(value, vn, f, vy, vx, extra)
                            T.buffer_store(out, value, [vn, f, vy, vx])
                    row0, col0, val0 = row0 + nrows, col0 + ncols, val0 + nrows * ncols
    return ib.get()


def kernel_args(sparse: GroupedColumnSparse) -> list[np.ndarray]:
    """``values, col_indices, row_order`` as the numpy arrays the PrimFunc takes."""
    values = sparse.values if len(sparse.values) else np.zeros(1, np.float32)
    cols = sparse.col_indices.astype(np.int32) if len(sparse.col_indices) else np.zeros(1, np.int32)
    return [values.astype(np.float32), cols, sparse.row_order.astype(np.int32)]


def geometry(
    n: int, ci: int, h: int, w: int, co: int, k: int, stride: int = 1, padding: int | None = None, dilation: int = 1
) -> ConvGeometry:
    """The ``ConvGeometry`` of a square-kernel, groups=1 conv (``padding`` defaults to "same")."""
    pad = dilation * (k // 2) if padding is None else padding
    oh = (h + 2 * pad - dilation * (k - 1) - 1) // stride + 1
    ow = (w + 2 * pad - dilation * (k - 1) - 1) // stride + 1
    return ConvGeometry(n=n, ci=ci, h=h, w=w, co=co, kh=k, kw=k, sh=stride, sw=stride, dh=dilation, dw=dilation,
                        pt=pad, pl=pad, oh=oh, ow=ow, groups=1, padded=pad > 0)


def recorded(func: tvm.tirx.PrimFunc) -> tuple[ConvGeometry, Structure] | None:
    """The geometry and structure recorded on a PrimFunc built by ``sparse_conv_func``."""
    attrs = func.attrs
    if attrs is None or ATTR not in attrs:
        return None
    record = attrs[ATTR]
    fields = {k: int(v) for k, v in record["geometry"].items()}
    geom = ConvGeometry(**{k: (bool(v) if k == "padded" else v) for k, v in fields.items()})
    return geom, Structure(tuple(int(v) for v in record["group_rows"]), tuple(int(v) for v in record["group_cols"]))
