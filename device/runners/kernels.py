"""Timing one compiled kernel, not a whole artifact: what the tuner measures through a runner.

A kernel library is a shared library whose ``main`` is one scheduled PrimFunc; it is timed on
random inputs with TVM's ``time_evaluator``, on this CPU or on a device of the farm (the
runners' ``time_kernels``). Every library ends as a latency summary or a ``JobFailure``:
nothing a candidate does can stop a tuning run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import tvm

from edgeprune.compiler.threads import default_num_threads, set_num_threads
from edgeprune.device.stats import summarize

RECORDED_STATS = ("median_ms", "mean_ms", "min_ms", "max_ms", "std_ms", "runs")

ArgSpec = tuple[tuple[int, ...], str]  # shape and dtype of one kernel parameter
KernelLibrary = tuple[str, tuple[ArgSpec, ...]]  # a library's path and its main's parameters


@dataclass(frozen=True)
class TimingPlan:
    """``repeat`` timed repeats, each of at least ``min_repeat_ms`` (TVM raises the call count).

    With ``cold``, every repeat is one call that starts with all arguments but the first (the
    weights, side inputs and output) flushed from the CPU caches, as in a whole model, where
    only the input was just written by the previous kernel; ``min_repeat_ms`` is then unused.
    Timed warm and alone, a kernel keeps a multi-megabyte output in the last-level cache
    between calls, which a model running its kernels in sequence does not.
    """

    repeat: int = 5
    min_repeat_ms: int = 20
    threads: int | None = None
    cold: bool = False

    def evaluator(self, lib: Any, device: Any) -> Any:
        """TVM's timer of ``lib``'s ``main`` on ``device`` under this plan."""
        if self.cold:
            return lib.time_evaluator("main", device, number=1, repeat=self.repeat, f_preproc="cache_flush_cpu_non_first_arg")
        return lib.time_evaluator("main", device, number=1, repeat=self.repeat, min_repeat_ms=self.min_repeat_ms)


def load_tvm() -> None:
    """A worker process's warm-up: TVM is imported before its first job, not inside that job's timeout."""
    import tvm  # noqa: F401


def random_args(args: tuple[ArgSpec, ...], device: Any) -> list[Any]:
    """Random floats; integer parameters (the sparse kernel's column indices) are zeros.

    Random integers would index out of bounds and crash the kernel. All-zero indices make a
    gather read one row over and over: cheaper than the real scattered reads, but alike for
    every config of the kernel, which are compared on equal terms.
    """
    rng = np.random.default_rng(0)
    return [tvm.runtime.tensor((rng.standard_normal(shape) if np.dtype(dtype).kind == "f" else np.zeros(shape)).astype(dtype),
                               device=device) for shape, dtype in args]


def summarize_ms(seconds: list[float]) -> dict[str, float]:
    """A tuning record's ``latency``: those of ``edgeprune bench``'s statistics that a handful of
    timed repeats make meaningful (no percentiles, no cold first run)."""
    stats = summarize([s * 1e3 for s in seconds], first_ms=math.nan)
    return {key: getattr(stats, key) for key in RECORDED_STATS}


def time_loaded(lib: Any, device: Any, args: tuple[ArgSpec, ...], plan: TimingPlan) -> dict[str, float]:
    """Time ``main`` of a library loaded on ``device`` (here or in an RPC session)."""
    tensors = random_args(args, device)
    lib["main"](*tensors)  # warm-up: first-touch pages, thread pool start
    return summarize_ms(list(plan.evaluator(lib, device)(*tensors).results))


def time_library(path: str, args: tuple[ArgSpec, ...], plan: TimingPlan) -> dict[str, float]:
    """Time ``main`` of the library at ``path`` on this CPU (runs in the local runner's worker)."""
    set_num_threads(plan.threads or default_num_threads())
    return time_loaded(tvm.runtime.load_module(path), tvm.cpu(), args, plan)
