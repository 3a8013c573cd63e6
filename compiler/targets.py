"""The target registry: one name per device class, with its TVM target, limits and notes.

Built in: ``host`` (this CPU, as LLVM detects it), ``adreno660`` (Snapdragon 888),
``adreno740`` (Snapdragon 8 Gen 2), ``android-arm64-cpu`` (the big cores of an arm64 phone).
Users add their own in a TOML or JSON file, named by ``EDGEPRUNE_TARGETS`` (one or more
paths separated by ``os.pathsep``) and/or ``--targets-file``::

    format_version = 1                      # optional; 1 is the only version

    [targets.s23-gpu]
    extends = "adreno740"                   # optional: start from a built-in or earlier target
    notes = "Galaxy S23, Snapdragon 8 Gen 2 for Galaxy"
    tvm = { max_threads_per_block = 512 }   # merged into (or, without extends, the whole) TVM dict

JSON holds the same object (``{"targets": {"s23-gpu": {...}}}``). A target's limits are the
attributes of its TVM dict (``max_threads_per_block``, ``max_shared_memory_per_block``,
``texture_spatial_limit``, ``texture_depth_limit``), so what ``edgeprune targets`` shows is
what the GPU schedules read from the ``tvm.target.Target``.

The Adreno limits are TVM's own Adreno defaults (the ``qcom/adreno-opencl`` tag): the
drivers advertise work groups of up to 1024 items, but register pressure of real kernels keeps
the usable size lower, and TVM's rules are tuned at 256. A phone's ``clinfo`` gives its exact
values; put them in a targets file to schedule against them.

Runners check an artifact against a device with ``device_type`` and ``triple`` of the
artifact's ``meta.json`` ``target`` dict (the registry need not know the artifact's name).
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeprune.base.errors import EdgepruneError, first_line
from edgeprune.base.formats import check_version
from edgeprune.compiler.target import host_target_dict

ENV_VAR = "EDGEPRUNE_TARGETS"
FORMAT_VERSION = 1
LIMIT_KEYS = ("max_threads_per_block", "max_shared_memory_per_block", "texture_spatial_limit", "texture_depth_limit")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_ENTRY_KEYS = {"extends", "notes", "tvm"}

ANDROID_TRIPLE = "aarch64-linux-android"
_ANDROID_HOST = {"kind": "llvm", "mtriple": ANDROID_TRIPLE, "mattr": ["+neon"]}
_ADRENO = {
    "kind": "opencl",
    "device": "adreno",
    "max_threads_per_block": 256,
    "max_shared_memory_per_block": 16384,
    "texture_spatial_limit": 16384,
    "texture_depth_limit": 2048,
    "host": _ANDROID_HOST,
}


@dataclass(frozen=True)
class DeviceTarget:
    """A named compilation target: ``tvm`` is the dict ``tvm.target.Target`` takes."""

    name: str
    tvm: dict[str, Any]
    notes: str
    source: str = "built-in"  # or the targets file that defined it
    limits: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "limits", {k: int(self.tvm[k]) for k in LIMIT_KEYS if k in self.tvm})

    @property
    def device_type(self) -> str:
        return device_type(self.tvm)

    @property
    def triple(self) -> str:
        return triple(self.tvm)

    @property
    def is_gpu(self) -> bool:
        return self.device_type != "cpu"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "device_type": self.device_type, "triple": self.triple, "limits": self.limits,
                "tvm": self.tvm, "notes": self.notes, "source": self.source}


def device_type(tvm_dict: dict[str, Any]) -> str:
    """The TVM runtime device an artifact of this target runs on: ``cpu`` or ``opencl``."""
    kind = tvm_dict.get("kind")
    return "cpu" if kind in ("llvm", "c") else str(kind)


def triple(tvm_dict: dict[str, Any]) -> str:
    """The LLVM triple of the code the host side runs (the CPU that loads the library)."""
    host = tvm_dict.get("host")
    if isinstance(host, dict):
        return str(host.get("mtriple", ""))
    return str(tvm_dict.get("mtriple", ""))


def _builtins() -> dict[str, DeviceTarget]:
    entries = [
        DeviceTarget("host", host_target_dict(), "this machine's CPU as LLVM detects it, all cores it may use"),
        DeviceTarget(
            "adreno660", dict(_ADRENO),
            "Adreno 660 GPU of the Snapdragon 888 (Galaxy S21, Xiaomi Mi 11), OpenCL buffers; "
            "limits are TVM's Adreno defaults",
        ),
        DeviceTarget(
            "adreno740", dict(_ADRENO),
            "Adreno 740 GPU of the Snapdragon 8 Gen 2 (Galaxy S23, OnePlus 11), OpenCL buffers; "
            "limits are TVM's Adreno defaults",
        ),
        DeviceTarget(
            "android-arm64-cpu", {**_ANDROID_HOST, "num-cores": 4},
            "the CPU of an arm64 Android phone (NEON); 4 threads for the big/prime cores",
        ),
    ]
    return {t.name: t for t in entries}


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise EdgepruneError(f"{path}: cannot read targets file ({exc})") from exc
    try:
        if path.suffix.lower() == ".json":
            obj = json.loads(text)
        else:
            obj = tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
        raise EdgepruneError(f"{path}: not valid {kind} ({exc})") from exc
    if not isinstance(obj, dict):
        raise EdgepruneError(f"{path}: expected an object with a 'targets' table")
    unknown = set(obj) - {"format_version", "targets"}
    if unknown:
        raise EdgepruneError(f"{path}: unknown top-level key(s) {sorted(unknown)} (expected 'targets', 'format_version')")
    check_version(obj.get("format_version", FORMAT_VERSION), FORMAT_VERSION, where=str(path))
    targets = obj.get("targets")
    if not isinstance(targets, dict) or not targets:
        raise EdgepruneError(f"{path}: no 'targets' table with at least one target")
    return targets


def _entry(path: Path, name: str, spec: Any, known: dict[str, DeviceTarget]) -> DeviceTarget:
    where = f"{path}: target {name!r}"
    if not _NAME.match(name):
        raise EdgepruneError(f"{where}: names are lower-case letters, digits, '.', '_' and '-'")
    if not isinstance(spec, dict):
        raise EdgepruneError(f"{where}: expected a table")
    unknown = set(spec) - _ENTRY_KEYS
    if unknown:
        raise EdgepruneError(f"{where}: unknown key(s) {sorted(unknown)} (expected {sorted(_ENTRY_KEYS)})")
    if name in known and known[name].source == "built-in":
        raise EdgepruneError(f"{where}: redefines a built-in target; pick another name (use extends = {name!r})")
    tvm_part = spec.get("tvm", {})
    if not isinstance(tvm_part, dict):
        raise EdgepruneError(f"{where}: 'tvm' must be a table of TVM target attributes")
    notes = spec.get("notes", "")
    if not isinstance(notes, str):
        raise EdgepruneError(f"{where}: 'notes' must be a string")
    base: dict[str, Any] = {}
    if "extends" in spec:
        parent = known.get(spec["extends"]) if isinstance(spec["extends"], str) else None
        if parent is None:
            raise EdgepruneError(f"{where}: extends unknown target {spec['extends']!r} (known: {', '.join(known)})")
        base = json.loads(json.dumps(parent.tvm))
        notes = notes or parent.notes
    merged = {**base, **tvm_part}
    if isinstance(base.get("host"), dict) and isinstance(tvm_part.get("host"), dict):
        merged["host"] = {**base["host"], **tvm_part["host"]}
    if "kind" not in merged:
        raise EdgepruneError(f"{where}: no TVM target kind (give tvm.kind, or extends a target)")
    for key in LIMIT_KEYS:
        if key in merged and (not isinstance(merged[key], int) or isinstance(merged[key], bool) or merged[key] <= 0):
            raise EdgepruneError(f"{where}: {key} must be a positive integer, got {merged[key]!r}")
    _check_tvm(where, merged)
    return DeviceTarget(name, merged, notes, str(path))


def _check_tvm(where: str, spec: dict[str, Any]) -> None:
    """TVM itself validates kinds and attribute names and types."""
    import tvm

    if spec.get("kind") not in ("llvm", "opencl"):
        raise EdgepruneError(f"{where}: kind {spec.get('kind')!r} is not supported (edgeprune builds 'llvm' and 'opencl')")
    try:
        tvm.target.Target(dict(spec))
    except Exception as exc:  # noqa: BLE001 - TVM raises ValueError/TypeError/TVMError
        raise EdgepruneError(f"{where}: TVM rejects the target: {first_line(exc)}") from exc


def target_files(extra: Iterable[str | os.PathLike[str]] = ()) -> list[Path]:
    """The user's targets files: those in ``EDGEPRUNE_TARGETS``, then ``extra``."""
    env = [Path(p) for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p]
    return env + [Path(p) for p in extra]


def load_targets(files: Sequence[str | os.PathLike[str]] | None = None) -> dict[str, DeviceTarget]:
    """Built-ins plus the targets of ``files`` (default: ``target_files()``), in order; a later
    file may extend an earlier file's targets."""
    known = _builtins()
    for path in target_files() if files is None else [Path(f) for f in files]:
        for name, spec in _read_file(path).items():
            known[name] = _entry(path, name, spec, known)
    return known


def get_target(name: str, targets_file: str | os.PathLike[str] | None = None) -> DeviceTarget:
    """The target called ``name`` among the built-ins, ``EDGEPRUNE_TARGETS`` and ``targets_file``."""
    known = load_targets(target_files([targets_file] if targets_file is not None else []))
    if name not in known:
        raise EdgepruneError(f"unknown target {name!r} (known: {', '.join(known)}; add your own with --targets-file)")
    return known[name]


def resolve_target(name: str, targets_file: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The TVM target dict of a target name given on the command line."""
    return dict(get_target(name, targets_file).tvm)
