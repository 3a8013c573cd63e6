"""Run an artifact's OpenCL kernels on this machine's OpenCL device and compare with the CPU.

A GPU artifact keeps what this needs next to its library (see ``compiler.gpu_artifact``):
the OpenCL source as embedded, each PrimFunc's kernels with their launch sizes and buffer
arguments, and the PrimFuncs before scheduling as TVMScript. For every PrimFunc this fills its
buffers with the same random numbers twice; runs its kernels in launch order through pyopencl
(on PoCL here), and runs the unscheduled PrimFunc compiled by TVM for this CPU; then compares
every buffer. A wrong schedule (a broken thread binding, an off-by-one in a split, a bad
reduction) shows up as a mismatch before the library reaches a phone.

The timings are the OpenCL device's (PoCL on a CPU), not the phone GPU's, and are labelled so.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.base.errors import EdgepruneError, first_line
from edgeprune.compiler.artifact import read_meta
from edgeprune.compiler.gpu_artifact import read_kernel_files
from edgeprune.compiler.target import host_target_dict

SECTION = "// Function: "
RTOL, ATOL = 1e-4, 1e-4  # ATOL is a fraction of the reference's largest magnitude (at least 1)


@dataclass
class KernelResult:
    kernel: str
    func: str
    status: str  # ok | mismatch | build_failed | run_failed
    max_error: float | None = None
    pocl_ms: float | None = None
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"kernel": self.kernel, "func": self.func, "status": self.status, "max_error": self.max_error,
                "pocl_ms": self.pocl_ms, "detail": self.detail}


@dataclass
class CheckReport:
    device: str
    results: list[KernelResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(r.status == "ok" for r in self.results)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.results:
            out[r.status] = out.get(r.status, 0) + 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {"device": self.device, "timings_are": f"{self.device} (not the phone's GPU)", "ok": self.ok,
                "counts": self.counts(), "seconds": round(self.seconds, 3), "kernels": [r.to_json() for r in self.results]}


def split_source(source: str) -> dict[str, str]:
    """TVM's OpenCL source holds one program per kernel, each after ``// Function: NAME``."""
    programs = {}
    for chunk in source.split(SECTION)[1:]:
        name, _, body = chunk.partition("\n")
        programs[name.strip()] = body
    return programs


def _opencl_device():
    try:
        import pyopencl as cl
    except ImportError as exc:
        raise EdgepruneError("edgeprune check needs pyopencl and an OpenCL driver: pip install 'pyopencl[pocl]'") from exc
    try:
        platforms = cl.get_platforms()
    except cl.Error as exc:
        raise EdgepruneError(f"no OpenCL platform ({exc}); pip install 'pyopencl[pocl]' provides PoCL") from exc
    platforms = sorted(platforms, key=lambda p: "Portable Computing Language" not in p.name)
    for platform in platforms:
        devices = platform.get_devices()
        if devices:
            return cl, devices[0]
    raise EdgepruneError("no OpenCL device found; pip install 'pyopencl[pocl]' provides PoCL")


def _random(spec: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    shape, dtype = tuple(spec["shape"]), np.dtype(spec["dtype"])
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, shape).astype(dtype)
    return rng.integers(0, 4, shape).astype(dtype)


def _max_error(got: np.ndarray, want: np.ndarray, rtol: float, atol_frac: float) -> tuple[float, bool]:
    got64, want64 = got.astype(np.float64), want.astype(np.float64)
    nan = np.isnan(got64) & np.isnan(want64)
    diff = np.where(nan, 0.0, np.abs(got64 - want64))
    finite = want64[np.isfinite(want64)]
    scale = max(1.0, float(np.abs(finite).max())) if finite.size else 1.0
    err = float(np.nan_to_num(diff, nan=np.inf).max()) if diff.size else 0.0
    ok = bool(np.all(np.nan_to_num(diff, nan=np.inf) <= atol_frac * scale + rtol * np.abs(np.nan_to_num(want64))))
    return err, ok


class _Reference:
    """The unscheduled PrimFuncs, compiled by TVM for this CPU."""

    def __init__(self, script: str, path: Path, names: set[str]) -> None:
        import tvm

        try:
            mod = tvm.script.from_source(script)
        except Exception as exc:  # noqa: BLE001 - the parser raises assorted diagnostics
            raise EdgepruneError(f"{path}: cannot parse the reference TIR ({first_line(exc)})") from exc
        funcs = {gv: f.without_attr("target").with_attr("global_symbol", gv.name_hint)
                 for gv, f in mod.functions_items() if gv.name_hint in names}
        self.lib = tvm.tirx.build(tvm.IRModule(funcs), target=tvm.target.Target(host_target_dict()))

    def run(self, func: str, arrays: list[np.ndarray]) -> list[np.ndarray]:
        import tvm

        tensors = [tvm.runtime.tensor(a) for a in arrays]
        self.lib[func](*tensors)
        return [t.numpy() for t in tensors]


def check_artifact(path: str | os.PathLike[str], seed: int = 0, progress: Any = None,
                   funcs: Sequence[str] | None = None) -> CheckReport:
    """Check the kernels of the GPU artifact ``path`` (of the PrimFuncs ``funcs``, default all);
    ``progress(n)`` is called per PrimFunc."""

    root = Path(path)
    meta = read_meta(root)
    files = read_kernel_files(root, meta)
    selected = files.funcs
    if funcs is not None:
        unknown = sorted(set(funcs) - {f["name"] for f in files.funcs})
        if unknown:
            raise EdgepruneError(f"{root}: no function(s) {', '.join(unknown)} in the artifact's kernels")
        selected = [f for f in files.funcs if f["name"] in set(funcs)]
    cl, device = _opencl_device()
    label = f"OpenCL {device.platform.name.strip()} ({device.name.strip()})"
    report = CheckReport(device=label)
    started = time.perf_counter()
    programs = split_source(files.source)
    reference = _Reference(files.reference, files.reference_path, {f["name"] for f in selected})
    ctx = cl.Context([device])
    queue = cl.CommandQueue(ctx, properties=cl.command_queue_properties.PROFILING_ENABLE)
    rng = np.random.default_rng(seed)
    for func in selected:
        report.results.extend(_check_func(cl, ctx, queue, func, programs, reference, rng))
        if progress is not None:
            progress(1)
    report.seconds = time.perf_counter() - started
    return report


def _check_func(cl, ctx, queue, func: dict[str, Any], programs: dict[str, str], reference: _Reference,
                rng: np.random.Generator) -> list[KernelResult]:
    name = func["name"]
    kernels = func["kernels"]
    built, failed = {}, []
    for k in kernels:
        source = programs.get(k["name"])
        if source is None:
            failed.append(KernelResult(k["name"], name, "build_failed", detail="kernel not in the OpenCL source"))
            continue
        try:
            built[k["name"]] = getattr(cl.Program(ctx, source).build(), k["name"])
        except cl.Error as exc:
            failed.append(KernelResult(k["name"], name, "build_failed", detail=first_line(exc)[:300]))
    if failed:
        return failed + [KernelResult(k["name"], name, "run_failed", detail="another kernel of the function failed to build")
                         for k in kernels if k["name"] in built]
    inputs = [_random(p, rng) for p in func["params"]]
    want = reference.run(name, [a.copy() for a in inputs])
    mf = cl.mem_flags
    buffers = [cl.Buffer(ctx, mf.READ_WRITE | mf.COPY_HOST_PTR, hostbuf=a) for a in inputs]
    scratch: dict[tuple[str, int, str], Any] = {}  # global buffers the function allocates, shared by its kernels

    def buffer_of(arg: dict[str, Any]) -> Any:
        if arg["param"] is not None:
            return buffers[arg["param"]]
        key = (arg["name"], arg["numel"], arg["dtype"])
        if key not in scratch:
            scratch[key] = cl.Buffer(ctx, mf.READ_WRITE, size=max(1, arg["numel"] * np.dtype(arg["dtype"]).itemsize))
        return scratch[key]

    times: dict[str, float] = {}
    try:
        for k in kernels:
            args = [buffer_of(a) for a in k["args"]]
            event = built[k["name"]](queue, tuple(k["global_size"]), tuple(k["local_size"]), *args)
            event.wait()
            times[k["name"]] = (event.profile.end - event.profile.start) * 1e-6
        got = [np.empty_like(a) for a in inputs]
        for buf, out in zip(buffers, got):
            cl.enqueue_copy(queue, out, buf)
        queue.finish()
    except cl.Error as exc:
        return [KernelResult(k["name"], name, "run_failed", detail=first_line(exc)[:300]) for k in kernels]
    worst, all_ok = 0.0, True
    for g, w in zip(got, want):
        err, ok = _max_error(g, w, RTOL, ATOL)
        worst, all_ok = max(worst, err), all_ok and ok
    status = "ok" if all_ok else "mismatch"
    return [KernelResult(k["name"], name, status, worst, times.get(k["name"])) for k in kernels]
