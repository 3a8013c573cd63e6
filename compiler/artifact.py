"""The compiled-model directory and the callable that runs it.

::

    ART/
      model.so    the Relax VM executable with its kernels and weights (``export_library``)
      meta.json   format/version, target, device class, input/output specs, source hash,
                  edgeprune and TVM versions, the edgeprune commit when built from a
                  checkout, whether tuned configs were used, and the rule, workload
                  and config of every kernel; for Android targets the linker used
                  (``compiler.android``), for GPU targets the kernel files; with ``--sparse``
                  each candidate conv's measured sparse/dense times and the choice
      kernels/    GPU targets only: what ``edgeprune check`` runs (``compiler.gpu_artifact``)

The directory is built under a hidden sibling name and renamed into place, so ``ART`` is
either the previous complete artifact or the new complete one.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.base.errors import EdgepruneError, first_line
from edgeprune.base.formats import check_version
from edgeprune.compiler.frontend import TensorSpec
from edgeprune.compiler.threads import default_num_threads, set_num_threads

FORMAT = "edgeprune-artifact"
FORMAT_VERSION = 1
LIB_FILE = "model.so"
META_FILE = "meta.json"


@dataclass
class ArtifactMeta:
    """The contents of ``meta.json``."""

    target: dict[str, Any]
    device: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    source: str
    source_kind: str
    source_sha256: str
    edgeprune_version: str
    tvm_version: str
    tuned: bool
    schedules: list[dict[str, Any]] = field(default_factory=list)
    compile_seconds: float = 0.0
    linker: dict[str, Any] | None = None  # how an Android library was linked
    opencl: dict[str, Any] | None = None  # the kernel files of a GPU artifact
    sparse: list[dict[str, Any]] | None = None  # per candidate conv: sparse or dense, as measured
    git_commit: str | None = None  # the edgeprune checkout that compiled it (``base.provenance``)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "target": self.target,
            "device": self.device,
            "inputs": [t.to_json() for t in self.inputs],
            "outputs": [t.to_json() for t in self.outputs],
            "source": self.source,
            "source_kind": self.source_kind,
            "source_sha256": self.source_sha256,
            "edgeprune_version": self.edgeprune_version,
            "tvm_version": self.tvm_version,
            **({"git_commit": self.git_commit} if self.git_commit else {}),
            "tuned": self.tuned,
            "compile_seconds": round(self.compile_seconds, 3),
            **({"linker": self.linker} if self.linker else {}),
            **({"opencl": self.opencl} if self.opencl else {}),
            **({"sparse": self.sparse} if self.sparse is not None else {}),
            "schedules": self.schedules,
        }

    @classmethod
    def from_json(cls, obj: Any, path: Path) -> "ArtifactMeta":
        if not isinstance(obj, dict) or obj.get("format") != FORMAT:
            raise EdgepruneError(f"{path}: not an edgeprune artifact meta.json (no format '{FORMAT}')")
        check_version(obj.get("format_version"), FORMAT_VERSION, where=str(path))
        try:
            return cls(
                target=obj["target"],
                device=obj["device"],
                inputs=[TensorSpec.from_json(t) for t in obj["inputs"]],
                outputs=[TensorSpec.from_json(t) for t in obj["outputs"]],
                source=obj["source"],
                source_kind=obj["source_kind"],
                source_sha256=obj["source_sha256"],
                edgeprune_version=obj["edgeprune_version"],
                tvm_version=obj["tvm_version"],
                tuned=obj["tuned"],
                schedules=obj.get("schedules", []),
                compile_seconds=obj.get("compile_seconds", 0.0),
                linker=obj.get("linker"),
                opencl=obj.get("opencl"),
                sparse=obj.get("sparse"),
                git_commit=obj.get("git_commit"),
            )
        except (KeyError, TypeError) as exc:
            raise EdgepruneError(f"{path}: malformed meta.json (field {exc})") from exc


def write_artifact_dir(out: str | os.PathLike[str], fill: Callable[[Path], None]) -> Path:
    """Create ``out`` atomically: ``fill(staging_dir)`` writes the files, then it is renamed.

    An existing ``out`` is replaced only if it is an artifact (has ``meta.json``) or empty.
    """
    target = Path(out)
    if target.exists() and not target.is_dir():
        raise EdgepruneError(f"{target}: exists and is not a directory")
    if target.is_dir() and any(target.iterdir()) and not (target / META_FILE).is_file():
        raise EdgepruneError(f"{target}: exists and is not an edgeprune artifact; not overwriting it")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    old = None
    try:
        fill(staging)
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
            os.replace(target, old / target.name)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return target


def read_meta(path: str | os.PathLike[str]) -> ArtifactMeta:
    root = Path(path)
    meta_path = root / META_FILE
    if not root.is_dir():
        raise EdgepruneError(f"{root}: no such artifact directory")
    if not meta_path.is_file():
        raise EdgepruneError(f"{meta_path}: missing; {root} is not an edgeprune artifact")
    try:
        obj = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EdgepruneError(f"{meta_path}: not valid JSON ({exc})") from exc
    return ArtifactMeta.from_json(obj, meta_path)


class Artifact:
    """A loaded artifact: call it on numpy arrays, or time it.

    ``device`` is the TVM device the VM runs on: this CPU by default, or a remote device of an
    RPC session (``device.runners.rpc``), where inputs are uploaded and only results come back.
    """

    def __init__(self, path: Path, meta: ArtifactMeta, vm: Any, device: Any = None) -> None:
        import tvm

        self.path = path
        self.meta = meta
        self._vm = vm
        self.device = tvm.cpu() if device is None else device
        self._staging: list[Any] | None = None  # input tensors reused by every call
        self._local = self.device.dlpack_device_type() == tvm.cpu().dlpack_device_type()  # not over RPC

    @property
    def vm(self) -> Any:
        """The Relax VirtualMachine, for instrumentation (``device.profile`` times each kernel)."""
        return self._vm

    @property
    def inputs(self) -> list[TensorSpec]:
        return self.meta.inputs

    @property
    def outputs(self) -> list[TensorSpec]:
        return self.meta.outputs

    def _checked(self, arrays: tuple[np.ndarray, ...]) -> list[np.ndarray]:
        """The inputs as C-contiguous arrays, after checking their count, shapes and dtypes."""
        if len(arrays) != len(self.inputs):
            raise EdgepruneError(f"{self.path}: expects {len(self.inputs)} input(s), got {len(arrays)}")
        checked = []
        for spec, array in zip(self.inputs, arrays):
            array = np.asarray(array)
            if tuple(array.shape) != spec.shape or str(array.dtype) != spec.dtype:
                raise EdgepruneError(
                    f"{self.path}: input {spec.name!r} must be {spec.dtype} of shape {list(spec.shape)}, "
                    f"got {array.dtype} of shape {list(array.shape)}"
                )
            checked.append(np.ascontiguousarray(array))
        return checked

    def _tensors(self, arrays: tuple[np.ndarray, ...]) -> list[Any]:
        import tvm

        return [tvm.runtime.tensor(a, device=self.device) for a in self._checked(arrays)]

    def _staged(self, arrays: tuple[np.ndarray, ...]) -> list[Any]:
        """The inputs copied into tensors (on this CPU) allocated once and reused by every call."""
        import tvm

        checked = self._checked(arrays)
        if self._staging is None:
            self._staging = [tvm.runtime.empty(s.shape, s.dtype, self.device) for s in self.inputs]
        for tensor, array in zip(self._staging, checked):
            tensor.copyfrom(array)
        return self._staging

    def _to_numpy(self, tensor: Any) -> np.ndarray:
        """An output as a numpy array: handed over without a copy on this CPU, unless it shares
        memory with a staged input (which the next call overwrites)."""
        if not self._local:
            return tensor.numpy()
        array = np.from_dlpack(tensor)
        if any(np.shares_memory(array, np.from_dlpack(staged)) for staged in self._staging or ()):
            return array.copy()
        return array

    def __call__(self, *arrays: np.ndarray) -> np.ndarray | tuple[np.ndarray, ...]:
        """Run the model; one output comes back as an array, several as a tuple.

        Inputs go through tensors allocated once (aligned, warm in cache) rather than fresh
        ones, and outputs come back without a copy: no allocation and no extra pass over the
        maps per call. Like TVM's VM, not for concurrent calls.
        """
        # Over RPC the inputs are uploaded anyway; tensors kept on a remote device would outlive its session.
        result = self._vm["main"](*(self._staged(arrays) if self._local else self._tensors(arrays)))
        if len(self.outputs) == 1:
            return self._to_numpy(result)
        return tuple(self._to_numpy(r) for r in result)

    def time(self, number: int = 10, repeat: int = 5, inputs: tuple[np.ndarray, ...] | None = None) -> list[float]:
        """Milliseconds per run, one value per repeat (each the mean of ``number`` runs).

        ``inputs`` default to zeros of the input specs; latency does not depend on values. TVM's
        timer makes one untimed call first, so the cold first run is ``first_run_ms``.
        """
        timer = self._vm.time_evaluator(self._bind(inputs), self.device, number=number, repeat=repeat, min_repeat_ms=0)
        return [t * 1e3 for t in timer().results]

    def first_run_ms(self, inputs: tuple[np.ndarray, ...] | None = None) -> float:
        """Wall time of one call as this process sees it (over RPC: plus one round trip)."""
        import time

        function = self._vm[self._bind(inputs)]
        start = time.perf_counter()
        function()
        self.device.sync()
        return (time.perf_counter() - start) * 1e3

    def _bind(self, inputs: tuple[np.ndarray, ...] | None) -> str:
        """Save ``main`` bound to the inputs (zeros by default) and returning nothing, so no
        output travels per run (nor a tuple of them, which TVM warns a timer over RPC may not return)."""
        arrays = inputs or tuple(np.zeros(s.shape, dtype=s.dtype) for s in self.inputs)
        self._vm.save_function("main", "edgeprune_timed_main", *self._tensors(arrays), include_return=False)
        return "edgeprune_timed_main"


_ELF_MACHINES = {0x03: "i386", 0x28: "arm", 0x3E: "x86_64", 0xB7: "aarch64", 0xF3: "riscv64"}


def elf_machine(path: Path) -> str | None:
    """The architecture an ELF file is built for (``platform.machine()`` spelling), if it is ELF."""
    with open(path, "rb") as f:
        header = f.read(20)
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    order = "little" if header[5] == 1 else "big"
    code = int.from_bytes(header[18:20], order)
    return _ELF_MACHINES.get(code, f"ELF machine {code:#x}")


def load_artifact(path: str | os.PathLike[str], num_threads: int | None = None) -> Artifact:
    """Load ``path``; TVM runs ``num_threads`` worker threads (default: ``TVM_NUM_THREADS`` or all cores)."""
    import tvm
    from tvm import relax

    root = Path(path)
    meta = read_meta(root)
    if meta.device != "host":
        raise EdgepruneError(f"{root}: compiled for device class {meta.device!r}; only 'host' artifacts run here")
    lib_path = root / LIB_FILE
    if not lib_path.is_file():
        raise EdgepruneError(f"{lib_path}: missing")
    built_for, here = elf_machine(lib_path), platform.machine()
    if built_for is not None and built_for != here:
        # the dynamic loader would only say "No such file or directory" (of the foreign interpreter)
        raise EdgepruneError(f"{lib_path}: an {built_for} library, this machine is {here}; run it on its device "
                             "(--device rpc://HOST:PORT/KEY) or compile for --target host")
    try:
        lib = tvm.runtime.load_module(str(lib_path))
        vm = relax.VirtualMachine(lib, tvm.cpu())
    except Exception as exc:  # noqa: BLE001 - a truncated or foreign .so fails in many ways
        raise EdgepruneError(f"{lib_path}: cannot be loaded: {first_line(exc)}") from exc
    set_num_threads(num_threads or default_num_threads())
    return Artifact(root, meta, vm)
