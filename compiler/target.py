"""Compilation targets: the host CPU as LLVM sees it, and the hardware facts schedules need."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from typing import Any

import tvm
from tvm.target import codegen

from edgeprune.errors import EdgepruneError

TARGETS = ("host",)


@dataclass(frozen=True)
class Hardware:
    """What the schedules tune against: SIMD width in float32 lanes and the core count."""

    vector_lanes: int
    cores: int


def host_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def host_target_dict() -> dict[str, Any]:
    """The LLVM target of this machine: its triple, the CPU LLVM detects, and its cores."""
    return {
        "kind": "llvm",
        "mtriple": f"{platform.machine()}-linux-gnu" if platform.system() == "Linux" else codegen.llvm_get_system_triple(),
        "mcpu": codegen.llvm_get_system_cpu(),
        "num-cores": host_cores(),
    }


def resolve_target(name: str) -> dict[str, Any]:
    """The target dict for a target name given on the command line."""
    if name == "host":
        return host_target_dict()
    raise EdgepruneError(f"unknown target {name!r}: this edgeprune compiles for {', '.join(TARGETS)}")


def make_target(spec: dict[str, Any]) -> tvm.target.Target:
    return tvm.target.Target(dict(spec))


def hardware_of(target: tvm.target.Target) -> Hardware:
    """SIMD lanes of float32 (from LLVM's vector width for the target CPU) and cores."""
    bits = int(codegen.llvm_get_vector_width(target))
    lanes = max(1, bits // 32)
    cores = int(target.attrs.get("num-cores", 1))
    return Hardware(vector_lanes=lanes, cores=max(1, cores))
