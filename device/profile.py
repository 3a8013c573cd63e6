"""Where an artifact's time goes: per-kernel times from the Relax VM's call instrumentation.

TVM 0.27 dropped the VM profiler (``vm.profile`` / ``tvm.runtime.profiling``), but the VM
still calls an instrument function before and after every ``Call`` instruction, with the
callee's symbol. Timing between the two calls measures each kernel (a fused PrimFunc) and
each VM builtin (allocation, shape checks) as it runs in the real model, in its real order,
with the real memory; the instrument adds about a microsecond per call. Each kernel's time
is its median over ``repeat`` inferences (summed over its calls within one inference).
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.compiler.artifact import load_artifact
from edgeprune.compiler.threads import default_num_threads

BUILTIN_PREFIX = "vm.builtin."


@dataclass(frozen=True)
class KernelTime:
    name: str
    calls: int
    ms: float
    rule: str | None = None
    tuned: bool = False


@dataclass(frozen=True)
class Profile:
    kernels: list[KernelTime]
    total_ms: float
    repeat: int
    threads: int

    def top(self, count: int) -> list[KernelTime]:
        """The ``count`` slowest kernels, then the rest summed as one ``other`` entry."""
        if len(self.kernels) <= count:
            return list(self.kernels)
        rest = self.kernels[count:]
        return [*self.kernels[:count], KernelTime(f"other ({len(rest)} kernels)", sum(k.calls for k in rest),
                                                  sum(k.ms for k in rest))]


class InstrumentedModel:
    """A loaded host artifact whose every VM call is timed; ``infer`` runs one inference.

    Use as a context manager: the instrument is installed on entry and removed on exit.
    ``calls`` counts each kernel's calls in one inference (from the first).
    """

    def __init__(self, artifact: Any) -> None:
        import tvm

        self.artifact = artifact
        self.calls: dict[str, int] = defaultdict(int)
        self._arrays = tuple(tvm.runtime.tensor(np.zeros(s.shape, dtype=s.dtype)) for s in artifact.inputs)
        self._main = artifact.vm["main"]
        self._started: list[float] = []
        self._current: dict[str, float] = defaultdict(float)
        self._inferences = 0

    def _instrument(self, func, symbol, before_run, ret_value, *args):  # noqa: ANN001 - TVM's callback signature
        now = time.perf_counter()
        if before_run:
            self._started.append(now)
        else:
            name = BUILTIN_PREFIX + "*" if symbol.startswith(BUILTIN_PREFIX) else symbol
            self._current[name] += now - self._started.pop()
            if self._inferences == 0:
                self.calls[name] += 1
        return 0  # VMInstrumentReturnKind.NO_OP: run the call

    def __enter__(self) -> "InstrumentedModel":
        self.artifact.vm.set_instrument(self._instrument)
        return self

    def __exit__(self, *exc: object) -> None:
        self.artifact.vm.set_instrument(None)

    def warm_up(self, runs: int) -> None:
        for _ in range(runs):
            self._main(*self._arrays)

    def infer(self) -> dict[str, float]:
        """Milliseconds per kernel (summed over its calls) in one inference."""
        self._main(*self._arrays)
        self._inferences += 1
        times = {name: seconds * 1e3 for name, seconds in self._current.items()}
        self._current.clear()
        return times


def profile_artifact(path: str | os.PathLike[str], repeat: int = 20, warmup: int = 3,
                     threads: int | None = None) -> Profile:
    """Per-kernel median times (slowest first) of the host artifact at ``path``.

    VM builtins are summed into one ``vm.builtin.*`` entry: they are bookkeeping, not kernels.
    """
    artifact = load_artifact(Path(path), num_threads=threads)
    schedules = {s["func"]: s for s in artifact.meta.schedules}
    model = InstrumentedModel(artifact)
    model.warm_up(warmup)
    with model:
        per_run = [model.infer() for _ in range(repeat)]
    kernels = []
    for name, calls in model.calls.items():
        ms = float(np.median([run.get(name, 0.0) for run in per_run]))
        schedule = schedules.get(name, {})
        kernels.append(KernelTime(name, calls, ms, schedule.get("rule"), bool(schedule.get("tuned", False))))
    kernels.sort(key=lambda k: -k.ms)
    return Profile(kernels=kernels, total_ms=sum(k.ms for k in kernels), repeat=repeat,
                   threads=threads or default_num_threads())
