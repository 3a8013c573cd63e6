"""From a checkpoint directory, ONNX or TFLite file to an artifact directory.

import (``frontend``) -> graph passes: BN folding (``passes``) -> LegalizeOps + FuseOps/FuseTIR
-> one schedule per PrimFunc (``schedules``) -> Relax lowering (dataflow to VM code, memory
planning) and TIR codegen -> ``model.so`` + ``meta.json`` (``artifact``).

GPU (OpenCL) targets take ``gpu_build`` instead of the CPU schedules; libraries for Android
(``aarch64-linux-android`` code) are linked by ``compiler.android``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import tvm
from tvm import relax
from tvm.relax.backend.cpu_generic import pipeline as cpu_pipeline

import edgeprune
from edgeprune.base.errors import EdgepruneError, last_line
from edgeprune.base.fileio import write_json
from edgeprune.base.provenance import source_commit
from edgeprune.compiler import android
from edgeprune.compiler.artifact import LIB_FILE, META_FILE, ArtifactMeta, write_artifact_dir
from edgeprune.compiler.frontend import ImportedModel, import_model
from edgeprune.compiler.gpu_artifact import write_kernel_files
from edgeprune.compiler.gpu_build import build_gpu
from edgeprune.compiler.passes import FuseEpilogue, graph_passes
from edgeprune.compiler.schedules.base import Config, Rule
from edgeprune.compiler.schedules.registry import ScheduledFunc, rules_for, schedule_module
from edgeprune.compiler.sparse.select import SparseOption, sparsify
from edgeprune.compiler.static_shapes import check_kernels_static
from edgeprune.compiler.target import make_target
from edgeprune.compiler.targets import device_type, resolve_target, triple


def fuse(imported: ImportedModel, target: tvm.target.Target, merge_convs: bool = True) -> tvm.IRModule:
    """The imported module after the graph passes and fusion: one PrimFunc per kernel.

    ``merge_convs`` merges conv pairs into one kernel: each inverted residual's expand and
    depthwise convs (``passes.fuse_expand_depthwise``), a lone depthwise conv and the pointwise
    conv reading it (``passes.fuse_depthwise_pointwise``).
    """
    with target:
        mod = FuseEpilogue(merge_convs)(graph_passes()(imported.mod))
    check_kernels_static(mod, imported.source)
    return mod


def lowering(target: tvm.target.Target) -> tvm.transform.Pass:
    """Relax lowering after scheduling: the CPU backend's pipeline minus legalize/fuse."""
    return tvm.transform.Sequential(
        cpu_pipeline.dataflow_lower_passes(target) + cpu_pipeline.finalize_passes(target),
        name="EdgepruneLowering",
    )


def build(
    imported: ImportedModel, target: tvm.target.Target, tuning_configs: dict[str, Config] | None = None,
    sparse: SparseOption | None = None, rules: Sequence[Rule] | None = None,
) -> tuple[relax.Executable, list[ScheduledFunc]]:
    """Compile ``imported`` for ``target`` with ``rules`` (default ``rules_for(target)``);
    returns the executable and how each kernel was scheduled.

    With ``sparse``, convs with enough zero weights get the grouped sparse kernel where it
    measures faster (``compiler.sparse.select``); ``sparse.choices`` records each decision.
    """
    # Sparse kernels replace single convs: a merged pair would hide one of its convs.
    mod = fuse(imported, target, merge_convs=sparse is None)
    if sparse is not None:
        mod, sparse.choices = sparsify(mod, target, sparse.min_zero, tuning_configs, sparse.force)
    mod, records = schedule_module(mod, rules_for(target) if rules is None else rules, tuning_configs)
    try:
        with target:
            executable = tvm.compile(mod, target, relax_pipeline=lowering(target))
    except Exception as exc:  # noqa: BLE001 - TVM's codegen errors name the function in the text
        raise EdgepruneError(f"building for {target.kind.name} failed: {last_line(exc)}") from exc
    return executable, records


def compile(  # noqa: A001 - the verb users know
    src: str | os.PathLike[str],
    target: str = "host",
    tuning_configs: dict[str, Config] | None = None,
    *,
    out: str | os.PathLike[str],
    input_shape: Sequence[int] | None = None,
    targets_file: str | os.PathLike[str] | None = None,
    sparse: float | None = None,
    rules: Sequence[Rule] | None = None,
) -> Path:
    """Compile a checkpoint directory, ONNX or TFLite file into the artifact directory ``out``.

    ``tuning_configs`` maps workload keys to schedule configs (from a tuner); workloads not in
    it get their rule's default. ``input_shape`` overrides the source's static input shape.
    ``target`` is a name of ``compiler.targets`` (user targets from ``targets_file`` too);
    ``rules`` replace the target's schedule rules (``schedules.registry.rules_for``).
    ``sparse`` (a fraction of zero weights; CPU targets) lets convs at least that sparse take
    the grouped sparse kernel where it measures faster; ``meta.json`` records each choice.
    """

    started = time.perf_counter()
    target_spec = resolve_target(target, targets_file)
    tvm_target = make_target(target_spec)
    gpu = device_type(target_spec) != "cpu"
    if tuning_configs and gpu:
        raise EdgepruneError(f"target {target!r} is a GPU: tuning configs apply to the CPU schedules only")
    if sparse is not None and (gpu or not 0.0 < sparse <= 1.0):
        raise EdgepruneError(f"--sparse {sparse}: sparse kernels need a CPU target and a zero fraction in (0, 1]")
    sparse_option = SparseOption(sparse) if sparse is not None else None
    imported = import_model(src, input_shape)
    gpu_build = build_gpu(imported, tvm_target, rules) if gpu else None
    if gpu_build is not None:
        executable, records = gpu_build.executable, gpu_build.records
    else:
        executable, records = build(imported, tvm_target, tuning_configs, sparse_option, rules)
    meta = ArtifactMeta(
        target=target_spec,
        device=target,
        inputs=imported.inputs,
        outputs=imported.outputs,
        source=str(Path(src).resolve()),
        source_kind=imported.source_kind,
        source_sha256=imported.source_sha256,
        edgeprune_version=edgeprune.__version__,
        tvm_version=tvm.__version__,
        git_commit=source_commit(),
        tuned=any(r.tuned for r in records),
        schedules=[r.to_json() for r in records],
        sparse=[c.to_json() for c in sparse_option.choices] if sparse_option else None,
    )

    def fill(staging: Path) -> None:
        if triple(target_spec).endswith("android"):
            meta.linker = android.export_library(executable, staging / LIB_FILE).to_json()
        else:
            executable.export_library(str(staging / LIB_FILE))
        if gpu_build is not None:
            meta.opencl = write_kernel_files(staging, gpu_build)
        meta.compile_seconds = time.perf_counter() - started
        write_json(staging / META_FILE, meta.to_json())

    return write_artifact_dir(out, fill)

