"""From a checkpoint directory or ONNX file to an artifact directory.

import (``frontend``) -> graph passes: BN folding (``passes``) -> LegalizeOps + FuseOps/FuseTIR
-> one schedule per PrimFunc (``schedules``) -> Relax lowering (dataflow to VM code, memory
planning) and TIR codegen -> ``model.so`` + ``meta.json`` (``artifact``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import tvm
from tvm import relax
from tvm.relax.backend.cpu_generic import pipeline as cpu_pipeline

from compiler.artifact import LIB_FILE, META_FILE, ArtifactMeta, write_artifact_dir
from compiler.frontend import ImportedModel, import_model
from compiler.passes import FuseEpilogue, graph_passes
from compiler.schedules.base import Config
from compiler.schedules.registry import ScheduledFunc, schedule_module
from compiler.target import hardware_of, make_target, resolve_target
from edgeprune.fileio import write_json


def fuse(imported: ImportedModel, target: tvm.target.Target) -> tvm.IRModule:
    """The imported module after the graph passes and fusion: one PrimFunc per kernel."""
    with target:
        mod = graph_passes()(imported.mod)
        return FuseEpilogue()(mod)


def lowering(target: tvm.target.Target) -> tvm.transform.Pass:
    """Relax lowering after scheduling: the CPU backend's pipeline minus legalize/fuse."""
    return tvm.transform.Sequential(
        cpu_pipeline.dataflow_lower_passes(target) + cpu_pipeline.finalize_passes(target),
        name="EdgepruneLowering",
    )


def build(
    imported: ImportedModel, target: tvm.target.Target, tuning_configs: dict[str, Config] | None = None
) -> tuple[relax.Executable, list[ScheduledFunc]]:
    """Compile ``imported`` for ``target``; returns the executable and how each kernel was scheduled."""
    mod = fuse(imported, target)
    mod, records = schedule_module(mod, hardware_of(target), tuning_configs)
    with target:
        executable = tvm.compile(mod, target, relax_pipeline=lowering(target))
    return executable, records


def compile(  # noqa: A001 - the verb users know
    src: str | os.PathLike[str],
    target: str = "host",
    tuning_configs: dict[str, Config] | None = None,
    *,
    out: str | os.PathLike[str],
    input_shape: Sequence[int] | None = None,
) -> Path:
    """Compile a checkpoint directory or ONNX file into the artifact directory ``out``.

    ``tuning_configs`` maps workload keys to schedule configs (from a tuner); workloads not in
    it get their rule's default. ``input_shape`` overrides the source's static input shape.
    """
    import edgeprune

    started = time.perf_counter()
    target_spec = resolve_target(target)
    tvm_target = make_target(target_spec)
    imported = import_model(src, input_shape)
    executable, records = build(imported, tvm_target, tuning_configs)
    meta = ArtifactMeta(
        target=target_spec,
        device="host",
        inputs=imported.inputs,
        outputs=imported.outputs,
        source=str(Path(src).resolve()),
        source_kind=imported.source_kind,
        source_sha256=imported.source_sha256,
        edgeprune_version=edgeprune.__version__,
        tvm_version=tvm.__version__,
        tuned=any(r.tuned for r in records),
        schedules=[r.to_json() for r in records],
    )

    def fill(staging: Path) -> None:
        executable.export_library(str(staging / LIB_FILE))
        meta.compile_seconds = time.perf_counter() - started
        write_json(staging / META_FILE, meta.to_json())

    return write_artifact_dir(out, fill)

