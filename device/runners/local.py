"""``--device local``: this machine's CPU.

An artifact runs in this process. Kernel libraries run in a worker process of their own (a
candidate that crashes at run time costs that worker, not the tuner), one at a time, so
nothing else the tuner does disturbs the timings.
"""

from __future__ import annotations

import platform
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.base.workers import JobFailure, WorkerPool
from edgeprune.compiler.artifact import load_artifact
from edgeprune.compiler.threads import default_num_threads
from edgeprune.device.runners.base import Runner
from edgeprune.device.runners.kernels import KernelLibrary, TimingPlan, load_tvm, time_library


@dataclass
class LocalModel:
    """A host artifact loaded here (``compiler.artifact.Artifact``) with its thread count."""

    artifact: Any
    threads: int
    device: str

    @property
    def target(self) -> dict[str, Any]:
        return self.artifact.meta.target

    def first_run(self) -> float:
        return self.artifact.first_run_ms()

    def time(self, number: int, repeat: int) -> list[float]:
        return self.artifact.time(number=number, repeat=repeat)

    def __call__(self, *arrays: np.ndarray) -> np.ndarray | tuple[np.ndarray, ...]:
        return self.artifact(*arrays)


class LocalRunner(Runner):
    """``timeout_s`` bounds each kernel library's timing (a hung candidate is killed)."""

    name = "local"

    def __init__(self, timeout_s: float = 60.0) -> None:
        self.timeout_s = timeout_s
        self._pool: WorkerPool | None = None

    @contextmanager
    def open(self, path: Path, threads: int | None = None) -> Iterator[LocalModel]:
        artifact = load_artifact(path, num_threads=threads)
        yield LocalModel(artifact, threads or default_num_threads(),
                         f"local ({platform.node()}, {platform.processor() or platform.machine()})")

    def time_kernels(self, libraries: Sequence[KernelLibrary], plan: TimingPlan) -> list[dict[str, float] | JobFailure]:
        if self._pool is None:
            self._pool = WorkerPool(1, warmup=load_tvm)
        return [self._pool.map(time_library, [(path, args, plan)], self.timeout_s)[0] for path, args in libraries]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
