"""Compilation targets: the host CPU as LLVM sees it, and the hardware facts schedules need."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from typing import Any

import tvm
from tvm.target import codegen


@dataclass(frozen=True)
class Hardware:
    """What the schedules tune against: SIMD width in float32 lanes and the core count."""

    vector_lanes: int
    cores: int

    @property
    def vector_registers(self) -> int:
        """Architectural vector registers: AVX2 (8 float lanes) has 16; AVX-512 and NEON have 32."""
        return 16 if self.vector_lanes == 8 else 32


def _start_cpus() -> tuple[int, ...]:
    try:
        return tuple(sorted(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return tuple(range(os.cpu_count() or 1))


# Read once at import: configuring TVM's thread pool (compiler.threads) pins the calling thread,
# so the affinity read later can be a single core even though the process may use them all.
_START_CPUS = _start_cpus()


def host_cpus() -> tuple[int, ...]:
    """The CPUs this process may run on (its affinity mask when edgeprune was imported)."""
    return _START_CPUS


def host_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's total)."""
    return len(_START_CPUS)


def host_target_dict() -> dict[str, Any]:
    """The LLVM target of this machine: its triple, the CPU LLVM detects, and its cores."""
    return {
        "kind": "llvm",
        "mtriple": f"{platform.machine()}-linux-gnu" if platform.system() == "Linux" else codegen.llvm_get_system_triple(),
        "mcpu": codegen.llvm_get_system_cpu(),
        "num-cores": host_cores(),
    }


def make_target(spec: dict[str, Any]) -> tvm.target.Target:
    return tvm.target.Target(dict(spec))


def hardware_of(target: tvm.target.Target) -> Hardware:
    """SIMD lanes of float32 (from LLVM's vector width for the target CPU) and cores."""
    bits = int(codegen.llvm_get_vector_width(target))
    lanes = max(1, bits // 32)
    cores = int(target.attrs.get("num-cores", 1))
    return Hardware(vector_lanes=lanes, cores=max(1, cores))
