"""The GPU (Adreno OpenCL) build: TVM's Adreno legalization, dlight GPU schedules, checks.

import -> BN folding (``passes.graph_passes``, shared with the CPU path) -> TVM's Adreno
legalization passes (``relax.backend.adreno``: decompose, legalize, fuse) -> one schedule per
PrimFunc by the GPU rules (``schedules.gpu``, through the registry) -> GPU Relax lowering ->
``tvm.compile``.

After building, every PrimFunc must have launched at least one device kernel within the
target's thread and local-memory limits, and the library must carry an OpenCL module: a
PrimFunc without thread bindings would otherwise silently run on the phone's CPU, or fail on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import tvm
from tvm import relax, tirx
from tvm.relax.backend import adreno

from edgeprune.base.errors import EdgepruneError, last_line
from edgeprune.compiler.frontend import ImportedModel
from edgeprune.compiler.gpu_kernels import KernelInfo, describe_kernels
from edgeprune.compiler.passes import graph_passes
from edgeprune.compiler.schedules.base import Rule
from edgeprune.compiler.schedules.gpu import gpu_rules
from edgeprune.compiler.schedules.registry import ScheduledFunc, schedule_module
from edgeprune.compiler.static_shapes import check_kernels_static


@dataclass
class GpuBuild:
    executable: relax.Executable
    records: list[ScheduledFunc]
    kernels: dict[str, list[KernelInfo]]  # PrimFunc name -> its device kernels, in launch order
    reference: tvm.IRModule  # the PrimFuncs before scheduling (what the OpenCL check runs on the CPU)
    opencl_source: str


def prim_funcs(mod: tvm.IRModule) -> tvm.IRModule:
    return tvm.IRModule({gv: f for gv, f in mod.functions_items() if isinstance(f, tirx.PrimFunc)}, attrs=mod.attrs)


def schedule_gpu(mod: tvm.IRModule, target: tvm.target.Target, rules: Sequence[Rule] | None = None,
                 ) -> tuple[tvm.IRModule, list[ScheduledFunc]]:
    """Every PrimFunc scheduled by the first of ``rules`` (default ``gpu_rules(target)``) that
    applies within the target's threads per block; one left unscheduled would run on the
    phone's CPU, so it is an error."""
    mod, records = schedule_module(mod, gpu_rules(target) if rules is None else rules)
    for record in records:
        if not record.scheduled:
            raise EdgepruneError(f"{record.func}: no GPU schedule rule applies ({record.fallback})")
    return mod, records


def check_limits(kernels: dict[str, list[KernelInfo]], target: tvm.target.Target) -> None:
    """Every PrimFunc launched a kernel, each within the target's threads and local memory."""
    max_threads = int(target.attrs.get("max_threads_per_block", 0)) or None
    max_shared = int(target.attrs.get("max_shared_memory_per_block", 0)) or None
    for func, infos in kernels.items():
        if not infos:
            raise EdgepruneError(f"{func}: fell back to the host CPU (no GPU kernel was generated for it)")
        for k in infos:
            if max_threads and k.threads_per_block > max_threads:
                raise EdgepruneError(f"{func}: kernel {k.name} uses {k.threads_per_block} threads per block, "
                                     f"over the target's {max_threads}")
            if max_shared and k.shared_bytes > max_shared:
                raise EdgepruneError(f"{func}: kernel {k.name} uses {k.shared_bytes} bytes of local memory, "
                                     f"over the target's {max_shared}")


def opencl_source(lib: tvm.runtime.Module) -> str:
    """The OpenCL source of the (first) OpenCL module imported by ``lib`` or its imports."""
    stack = [lib]
    while stack:
        m = stack.pop()
        if m.kind == "opencl":
            return m.inspect_source()
        stack.extend(m.imports)
    raise EdgepruneError("the GPU build produced no OpenCL module: every kernel fell back to the host")


def build_gpu(imported: ImportedModel, target: tvm.target.Target, rules: Sequence[Rule] | None = None,
              ) -> GpuBuild:
    """Compile ``imported`` for an OpenCL (Adreno) ``target``, in float32; ``rules`` replace
    ``gpu_rules(target)`` (benchmarks compare rule sets)."""
    with target:
        legalize = [p for p in adreno.legalize_passes(target) if p.info.name != "ApplyDefaultSchedule"]
        mod = graph_passes()(imported.mod)
        mod = tvm.transform.Sequential(adreno.library_dispatch_passes(target) + legalize)(mod)
        check_kernels_static(mod, imported.source)
        reference = prim_funcs(mod)
        mod, records = schedule_gpu(mod, target, rules)
        mod = tvm.transform.Sequential(adreno.dataflow_lower_passes(target) + adreno.finalize_passes(target))(mod)
        # Lowering turns some PrimFuncs (reshapes) into VM builtins; the rest must each run on the GPU.
        lowered = prim_funcs(mod)
        kept = {gv.name_hint for gv in lowered.get_global_vars()}
        records = [r for r in records if r.func in kept]
        reference = tvm.IRModule({gv: f for gv, f in reference.functions_items() if gv.name_hint in kept})
        try:
            kernels = describe_kernels(lowered, target)
        except ValueError as exc:  # a kernel shape this edgeprune cannot launch outside TVM
            raise EdgepruneError(f"GPU build: {exc}") from exc
        kernels = {r.func: kernels[r.func] for r in records}
        check_limits(kernels, target)
        try:
            executable = tvm.compile(mod, target, relax_pipeline=None)
        except Exception as exc:  # noqa: BLE001 - TVM's codegen errors name the function in the text
            raise EdgepruneError(f"building for {target.kind.name} failed: {last_line(exc)}") from exc
    return GpuBuild(executable, records, kernels, reference, opencl_source(executable.mod))
