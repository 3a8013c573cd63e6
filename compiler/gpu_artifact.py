"""What a GPU artifact keeps beside its library so that ``edgeprune check`` can test its kernels.

::

    ART/kernels/
      opencl.cl       the OpenCL source exactly as embedded in model.so: one program per kernel,
                      each after a ``// Function: NAME_kernel`` line
      launch.json     {"format_version": 1, "funcs": [{"name", "params": [{name, shape, dtype}],
                      "kernels": [{"name", "global_size", "local_size", "shared_bytes",
                      "args": [{"name", "dtype", "numel", "param": index | null (scratch)}]}]}]}
      reference.py    the same PrimFuncs before GPU scheduling, as one TVMScript IRModule

``meta.json`` names these files under ``opencl`` (with the kernel count).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeprune.base.errors import EdgepruneError
from edgeprune.base.fileio import write_json
from edgeprune.compiler.artifact import ArtifactMeta
from edgeprune.compiler.gpu_build import GpuBuild

KERNELS_DIR = "kernels"
SOURCE_FILE = f"{KERNELS_DIR}/opencl.cl"
LAUNCH_FILE = f"{KERNELS_DIR}/launch.json"
REFERENCE_FILE = f"{KERNELS_DIR}/reference.py"
LAUNCH_VERSION = 1


@dataclass
class KernelFiles:
    source: str
    funcs: list[dict[str, Any]]
    reference: str
    reference_path: Path


def _param_specs(func) -> list[dict[str, Any]]:
    specs = []
    for p in func.params:
        ty = p.ty
        specs.append({"name": p.name, "shape": [int(d) for d in ty.shape], "dtype": str(ty.dtype)})
    return specs


def write_kernel_files(staging: Path, build: GpuBuild) -> dict[str, Any]:
    """Write ``kernels/`` into the artifact being built; returns the ``opencl`` entry of meta.json."""
    folder = staging / KERNELS_DIR
    folder.mkdir()
    (staging / SOURCE_FILE).write_text(build.opencl_source)
    (staging / REFERENCE_FILE).write_text(build.reference.script())
    funcs = [
        {"name": gv.name_hint, "params": _param_specs(f), "kernels": [k.to_json() for k in build.kernels[gv.name_hint]]}
        for gv, f in sorted(build.reference.functions_items(), key=lambda item: item[0].name_hint)
    ]
    write_json(staging / LAUNCH_FILE, {"format_version": LAUNCH_VERSION, "funcs": funcs})
    return {"source": SOURCE_FILE, "launch": LAUNCH_FILE, "reference": REFERENCE_FILE,
            "funcs": len(funcs), "kernels": sum(len(f["kernels"]) for f in funcs)}


def read_kernel_files(root: Path, meta: ArtifactMeta) -> KernelFiles:
    """The kernel files of the artifact ``root``, with a one-line error for anything missing."""
    if not meta.opencl:
        raise EdgepruneError(f"{root}: has no OpenCL kernels (target kind {meta.target.get('kind')!r}); "
                             "compile for a GPU target such as adreno660")
    texts = {}
    for key in ("source", "launch", "reference"):
        path = root / str(meta.opencl.get(key, ""))
        if not meta.opencl.get(key) or not path.is_file():
            raise EdgepruneError(f"{path}: missing; the artifact's kernel files are incomplete")
        try:
            texts[key] = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise EdgepruneError(f"{path}: cannot be read ({exc})") from exc
    launch_path = root / meta.opencl["launch"]
    try:
        launch = json.loads(texts["launch"])
    except json.JSONDecodeError as exc:
        raise EdgepruneError(f"{launch_path}: not valid JSON ({exc})") from exc
    if (not isinstance(launch, dict) or launch.get("format_version") != LAUNCH_VERSION
            or not isinstance(launch.get("funcs"), list)):
        raise EdgepruneError(f"{launch_path}: not a launch file of format_version {LAUNCH_VERSION}")
    return KernelFiles(texts["source"], launch["funcs"], texts["reference"], root / meta.opencl["reference"])
