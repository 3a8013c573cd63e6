"""The device kernels of scheduled GPU PrimFuncs: names, launch sizes, arguments, local memory.

TVM lowers each scheduled PrimFunc into a host function that launches one or more device
kernels (``<func>_kernel``, ``<func>_kernel_1``, ...). This module runs the same TIR lowering
``tvm.compile`` runs (the ``default`` TIR pipeline, then the device finalization passes) and
reads each kernel back: its thread extents (``blockIdx.*``/``threadIdx.*`` ``thread_extent``
attributes, which are constants for static shapes), its buffer arguments (each the data pointer
of a buffer that is either a parameter of the PrimFunc or a global scratch buffer the
function allocates) and its ``shared``-scope allocations.

That is what the OpenCL check needs to launch a kernel outside TVM, and what the GPU build
checks against the target's limits. The description is plain JSON (``KernelInfo.to_json``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import tvm
import tvm_ffi
from tvm import tirx

_DIMS = {"x": 0, "y": 1, "z": 2}
_KERNEL_SUFFIX = re.compile(r"_kernel(?:_(\d+))?$")


@dataclass
class KernelArg:
    """One buffer argument: ``param`` (index into the PrimFunc's parameters) or a scratch buffer."""

    name: str
    dtype: str
    numel: int
    param: int | None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "numel": self.numel, "param": self.param}


@dataclass
class KernelInfo:
    """One device kernel: OpenCL global size = grid * block per dimension, local size = block."""

    name: str
    func: str
    grid: list[int] = field(default_factory=lambda: [1, 1, 1])
    block: list[int] = field(default_factory=lambda: [1, 1, 1])
    args: list[KernelArg] = field(default_factory=list)
    shared_bytes: int = 0

    @property
    def threads_per_block(self) -> int:
        return math.prod(self.block)

    @property
    def global_size(self) -> list[int]:
        return [g * b for g, b in zip(self.grid, self.block)]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "func": self.func, "global_size": self.global_size, "local_size": self.block,
                "shared_bytes": self.shared_bytes, "args": [a.to_json() for a in self.args]}


def _dtype_bytes(dtype: str) -> int:
    return max(1, tvm.runtime.DataType(dtype).bits * tvm.runtime.DataType(dtype).lanes // 8)


def _param_of(buffer: Any, params: list[tuple[str, int]], claimed: set[int]) -> int | None:
    """The PrimFunc parameter a kernel's buffer is: lowering flattens buffers (so identity is
    lost) and names can repeat (``split``'s outputs are all ``T_split``), hence name and size,
    and among equal candidates the first not yet taken by an earlier kernel of the function
    (kernels are generated in block order). Unmatched buffers are scratch the function allocates."""
    numel = math.prod(int(d) for d in buffer.ty.shape)
    candidates = [i for i, (name, size) in enumerate(params) if name == buffer.name and size == numel]
    free = [i for i in candidates if i not in claimed] or candidates
    if not free:
        return None
    claimed.add(free[0])
    return free[0]


def _describe(name: str, kernel: tirx.PrimFunc, func_name: str, params: list[tuple[str, int]], claimed: set[int]) -> KernelInfo:
    info = KernelInfo(name=name, func=func_name)
    declared: list[tuple[Any, Any]] = []

    def thread_extent(stmt: tirx.AttrStmt) -> None:
        if stmt.attr_key == "thread_extent":
            kind, dim = str(stmt.node.thread_tag).split(".")
            (info.grid if kind == "blockIdx" else info.block)[_DIMS[dim]] = int(stmt.value)

    def declare(stmt: tirx.DeclBuffer) -> None:
        if stmt.data is not None:
            declared.append((stmt.data, stmt.buffer))

    def allocate(stmt: tirx.AllocBuffer) -> None:
        ty = stmt.buffer.ty
        if str(ty.storage_scope).startswith("shared"):
            info.shared_bytes += math.prod(int(d) for d in ty.shape) * _dtype_bytes(str(ty.dtype))

    tvm_ffi.structural_walk(kernel.body, [(tirx.AttrStmt, thread_extent), (tirx.DeclBuffer, declare),
                                          (tirx.AllocBuffer, allocate)], order="pre")
    for var in kernel.params:
        buffer = next((b for data, b in declared if data.same_as(var)), None)
        if buffer is None:
            raise ValueError(f"kernel {name}: argument {var.name} is not a buffer (scalar kernel arguments are not described)")
        ty = buffer.ty
        numel = math.prod(int(d) for d in ty.shape)
        info.args.append(KernelArg(buffer.name, str(ty.dtype), numel, _param_of(buffer, params, claimed)))
    return info


def _kernel_order(name: str) -> int:
    match = _KERNEL_SUFFIX.search(name)
    return int(match.group(1) or 0) if match else 0


def describe_kernels(tir_mod: tvm.IRModule, target: tvm.target.Target) -> dict[str, list[KernelInfo]]:
    """The device kernels of every PrimFunc in ``tir_mod`` (scheduled, target-bound), in launch
    order, by PrimFunc name; a PrimFunc with no kernel maps to an empty list."""
    from tvm.tirx.build import split_host_device_mods

    pipeline, _, finalize_device = tvm.tirx.get_tir_pipeline("default")
    with target:
        lowered = pipeline(tirx.transform.BindTarget(target)(tir_mod))
    _, device_mods = split_host_device_mods(lowered)
    funcs = {gv.name_hint: f for gv, f in tir_mod.functions_items() if isinstance(f, tirx.PrimFunc)}
    device_kernels: dict[str, list[tuple[str, tirx.PrimFunc]]] = {name: [] for name in funcs}
    for device_mod in device_mods.values():
        for gv, kernel in finalize_device()(device_mod).functions_items():
            name = gv.name_hint
            owner = next((f for f in funcs if re.fullmatch(re.escape(f) + r"_kernel(_\d+)?", name)), None)
            if owner is None:
                raise ValueError(f"device kernel {name} belongs to no PrimFunc of the module")
            device_kernels[owner].append((name, kernel))
    result: dict[str, list[KernelInfo]] = {}
    for owner, kernels in device_kernels.items():
        params = [(p.name, math.prod(int(d) for d in p.ty.shape)) for p in funcs[owner].params]
        claimed: set[int] = set()
        result[owner] = [_describe(name, kernel, owner, params, claimed)
                         for name, kernel in sorted(kernels, key=lambda nk: _kernel_order(nk[0]))]
    return result
