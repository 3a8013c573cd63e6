"""The GPU (Adreno OpenCL) build: TVM's Adreno legalization, dlight GPU schedules, checks.

import -> BN folding (``passes.graph_passes``, shared with the CPU path) -> TVM's Adreno
legalization passes (``relax.backend.adreno``: decompose, legalize, fuse) -> one schedule per
PrimFunc: TVM's Adreno dlight rules (Conv2d, LayoutTransform, Pool2D, which take the texture
layouts), then the generic GPU rules Matmul and GEMV (TVM's Adreno pipeline has neither: its
convs and matmuls would otherwise get the one-thread-per-output Fallback), edgeprune's
``schedules.gpu.SmallReduction`` (depth-wise convs and pools, which TVM's rules schedule
badly or, for one-element reductions, wrongly), then Reduction, GeneralReduction, Fallback ->
GPU Relax lowering -> ``tvm.compile``.

After building, every PrimFunc must have launched at least one device kernel within the
target's thread and local-memory limits, and the library must carry an OpenCL module: a
PrimFunc without thread bindings would otherwise silently run on the phone's CPU, or fail on it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import tvm
import tvm_ffi
from tvm import relax, tirx
from tvm.relax.backend import adreno
from tvm.s_tir import dlight as dl

from edgeprune.base.errors import EdgepruneError, last_line
from edgeprune.compiler.frontend import ImportedModel
from edgeprune.compiler.gpu_kernels import KernelInfo, describe_kernels
from edgeprune.compiler.passes import graph_passes
from edgeprune.compiler.schedules.gpu import SmallReduction
from edgeprune.compiler.schedules.registry import ScheduledFunc


@dataclass
class GpuBuild:
    executable: relax.Executable
    records: list[ScheduledFunc]
    kernels: dict[str, list[KernelInfo]]  # PrimFunc name -> its device kernels, in launch order
    reference: tvm.IRModule  # the PrimFuncs before scheduling (what the OpenCL check runs on the CPU)
    opencl_source: str


def gpu_rules() -> list[dl.ScheduleRule]:
    return [
        dl.adreno.Conv2d(), dl.adreno.LayoutTransform(), dl.adreno.Pool2D(),
        dl.gpu.Matmul(), dl.gpu.GEMV(), SmallReduction(),
        dl.gpu.Reduction(), dl.gpu.GeneralReduction(), dl.gpu.Fallback(),
    ]


def threads_per_block(func: tirx.PrimFunc) -> int:
    """The most threads a block of ``func`` can have: the product, over threadIdx.x/y/z, of the
    largest extent bound to each (an upper bound when the function launches several kernels)."""
    extents: dict[str, int] = {}

    def visit(loop: tirx.For) -> None:
        tag = str(loop.thread_binding.thread_tag) if loop.thread_binding is not None else ""
        if tag.startswith("threadIdx.") and isinstance(loop.extent, tirx.IntImm):
            extents[tag] = max(extents.get(tag, 1), int(loop.extent))

    tvm_ffi.structural_walk(func.body, [(tirx.For, visit)], order="post")
    return math.prod(extents.values())


def _rule_name(rule: dl.ScheduleRule) -> str:
    """``dlight.adreno.Conv2d``, ``dlight.gpu.Matmul``, ``edgeprune.SmallReduction``."""
    module = type(rule).__module__
    if module.startswith("edgeprune."):
        return f"edgeprune.{type(rule).__name__}"
    return f"dlight.{'adreno' if '.adreno' in module else 'gpu'}.{type(rule).__name__}"


def prim_funcs(mod: tvm.IRModule) -> tvm.IRModule:
    return tvm.IRModule({gv: f for gv, f in mod.functions_items() if isinstance(f, tirx.PrimFunc)}, attrs=mod.attrs)


def schedule_gpu(mod: tvm.IRModule, target: tvm.target.Target, rules: Sequence[dl.ScheduleRule] | None = None,
                 ) -> tuple[tvm.IRModule, list[ScheduledFunc]]:
    """Schedule every PrimFunc with the first of ``rules`` (default ``gpu_rules()``) that
    applies within the target's threads per block."""
    mod = tvm.IRModule(dict(mod.functions), mod.attrs, mod.global_infos)
    rules = gpu_rules() if rules is None else list(rules)
    max_threads = int(target.attrs.get("max_threads_per_block", 0))
    records = []
    for gv, func in list(mod.functions_items()):
        if not isinstance(func, tirx.PrimFunc):
            continue
        scheduled, failures = None, []
        for rule in rules:
            try:
                sch = rule.apply(func, target, False)
            except (RuntimeError, ValueError, AssertionError) as exc:  # a rule that matched but broke
                failures.append(f"{type(rule).__name__}: {last_line(exc)}")
                continue
            if sch is None:
                continue
            candidate = (sch[0] if isinstance(sch, list) else sch).mod["main"]
            threads = threads_per_block(candidate)
            if max_threads and threads > max_threads:  # dlight's Matmul and GEMV use fixed tiles
                failures.append(f"{type(rule).__name__}: {threads} threads per block > {max_threads}")
                continue
            scheduled = candidate
            break
        if scheduled is None:
            raise EdgepruneError(f"{gv.name_hint}: no GPU schedule rule applies ({'; '.join(failures) or 'none matched'})")
        fallback = "; ".join(failures) or None
        if fallback:
            warnings.warn(f"{gv.name_hint}: {fallback}; scheduled by {type(rule).__name__}", stacklevel=2)
        mod[gv] = scheduled.with_attr("tirx.is_scheduled", True)
        records.append(ScheduledFunc(gv.name_hint, _rule_name(rule), gv.name_hint, {}, False, fallback))
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


def build_gpu(imported: ImportedModel, target: tvm.target.Target, rules: Sequence[dl.ScheduleRule] | None = None,
              ) -> GpuBuild:
    """Compile ``imported`` for an OpenCL (Adreno) ``target``, in float32; ``rules`` replace
    ``gpu_rules()`` (benchmarks compare rule sets)."""
    with target:
        legalize = [p for p in adreno.legalize_passes(target) if p.info.name != "ApplyDefaultSchedule"]
        mod = graph_passes()(imported.mod)
        mod = tvm.transform.Sequential(adreno.library_dispatch_passes(target) + legalize)(mod)
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
