"""Build candidates in parallel worker processes, then time them one at a time on a device.

A candidate is one workload's PrimFunc scheduled with one config. Builders (``WorkerPool``)
apply the rule and compile the PrimFunc alone into a shared library; a runner times that
library on the device with random inputs through TVM's ``time_evaluator``:

- ``LocalRunner`` in a worker process of its own (a candidate that crashes at run time
  costs that worker, not the tuner), while no build runs, so builds do not disturb timings;
- ``RpcRunner`` through a TVM RPC tracker: every measurement requests a session for the key
  from the tracker, so with several devices under one key the tracker spreads the
  measurements over all of them (as many in flight as the key has servers).

Every candidate ends as a latency summary or an error string; nothing a candidate does can
stop the run.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.base.errors import EdgepruneError
from edgeprune.base.workers import JobFailure, WorkerPool
from edgeprune.compiler import android
from edgeprune.compiler.schedules.base import Config, ScheduleRule, Workload
from edgeprune.compiler.targets import triple
from edgeprune.compiler.threads import default_num_threads, set_num_threads
from edgeprune.device.runners.tracker import TrackerAddress, last_line, registered_servers, request_session
from edgeprune.device.stats import summarize

RECORDED_STATS = ("median_ms", "mean_ms", "min_ms", "max_ms", "std_ms", "runs")

ArgSpec = tuple[tuple[int, ...], str]


@dataclass(frozen=True)
class Kernel:
    """What a builder needs to schedule one workload: its rule and PrimFunc (as TVM JSON)."""

    rule: ScheduleRule
    workload: Workload
    func_json: str = field(repr=False)
    args: tuple[ArgSpec, ...]  # shapes and dtypes of the PrimFunc's parameters


@dataclass(frozen=True)
class Outcome:
    latency: dict[str, float] | None
    error: str | None = None


def arg_specs(func: Any) -> tuple[ArgSpec, ...]:
    """Shapes and dtypes of a PrimFunc's parameters."""
    return tuple((tuple(int(d) for d in p.shape), str(p.dtype)) for p in func.params)


def kernel_of(rule: ScheduleRule, workload: Workload, func: Any) -> Kernel:
    import tvm

    return Kernel(rule, workload, tvm.ir.save_json(func), arg_specs(func))


def _import_tvm() -> None:
    import tvm  # noqa: F401


def build_kernel(kernel: Kernel, config: Config, target: dict[str, Any], path: str) -> float:
    """Schedule and compile ``kernel`` with ``config`` into ``path``; returns build seconds."""
    import tvm
    from tvm import s_tir

    started = time.perf_counter()
    sch = s_tir.Schedule(tvm.ir.load_json(kernel.func_json))
    kernel.rule.apply(sch, kernel.workload, config)
    mod = tvm.IRModule({"main": sch.mod["main"].with_attr("global_symbol", "main")})
    executable = tvm.compile(mod, tvm.target.Target(dict(target)))
    if triple(target).endswith("android"):
        android.export_library(executable, path)  # cross-linked for the phone
    else:
        executable.export_library(path)
    return time.perf_counter() - started


def random_args(args: tuple[ArgSpec, ...], device: Any) -> list[Any]:
    """Random floats; integer parameters (the sparse kernel's column indices) are zeros.

    Random integers would index out of bounds and crash the kernel. All-zero indices make a
    gather read one row over and over: cheaper than the real scattered reads, but alike for
    every config of the kernel, which are compared on equal terms.
    """
    import tvm

    rng = np.random.default_rng(0)
    return [tvm.runtime.tensor((rng.standard_normal(shape) if np.dtype(dtype).kind == "f" else np.zeros(shape)).astype(dtype),
                               device=device) for shape, dtype in args]


def summarize_ms(seconds: list[float]) -> dict[str, float]:
    """A tuning record's ``latency``: those of ``edgeprune bench``'s statistics that a handful of
    timed repeats make meaningful (no percentiles, no cold first run)."""
    stats = summarize([s * 1e3 for s in seconds], first_ms=math.nan)
    return {key: getattr(stats, key) for key in RECORDED_STATS}


@dataclass(frozen=True)
class TimingPlan:
    """``repeat`` timed repeats, each of at least ``min_repeat_ms`` (TVM raises the call count).

    With ``cold``, every repeat is one call that starts with all arguments but the first (the
    weights, side inputs and output) flushed from the CPU caches, as in a whole model, where
    only the input was just written by the previous kernel; ``min_repeat_ms`` is then unused.
    Timed warm and alone, a kernel keeps a multi-megabyte output in the last-level cache
    between calls. On TopFormer-Tiny at 512x512 neither way of timing picked configs that made
    the whole model faster than the defaults (tuned warm: 1.10x slower, cold: 1.05x slower,
    alternating whole-model runs), but cold-tuned configs cost the model less.
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


def time_library(path: str, args: tuple[ArgSpec, ...], plan: TimingPlan) -> dict[str, float]:
    """Time ``main`` of the library at ``path`` on this CPU (runs in the runner worker)."""
    import tvm

    set_num_threads(plan.threads or default_num_threads())
    lib = tvm.runtime.load_module(path)
    tensors = random_args(args, tvm.cpu())
    lib["main"](*tensors)  # warm-up: first-touch pages, thread pool start
    return summarize_ms(list(plan.evaluator(lib, tvm.cpu())(*tensors).results))


class LocalRunner:
    """Measures on this machine, in a worker process of its own."""

    def __init__(self, plan: TimingPlan, timeout_s: float) -> None:
        self.device_key = "local"
        self.plan = plan
        self.timeout_s = timeout_s
        self._pool = WorkerPool(1, warmup=_import_tvm)

    def measure(self, libs: list[tuple[str, tuple[ArgSpec, ...]]]) -> list[dict[str, float] | JobFailure]:
        return [self._pool.map(time_library, [(path, args, self.plan)], self.timeout_s)[0] for path, args in libs]

    def close(self) -> None:
        self._pool.close()


class RpcRunner:
    """Measures on the devices a TVM RPC tracker holds under one key.

    Each measurement asks the tracker for a session (``device.runners.tracker``: bounded
    waits), uploads the library and times it there; measurements run in as many threads as
    the key has devices, so the tracker, not edgeprune, decides which device takes which
    candidate.
    """

    def __init__(self, device: str, plan: TimingPlan, timeout_s: float) -> None:
        self.address = TrackerAddress.parse(device)
        self.device_key = self.address.key
        self.plan = plan
        self.timeout_s = timeout_s
        if registered_servers(self.address) == 0:
            raise EdgepruneError(f"{self.address}: the tracker has no device under key {self.address.key!r}")

    def _measure_one(self, path: str, args: tuple[ArgSpec, ...]) -> dict[str, float] | JobFailure:
        try:
            session = request_session(self.address, self.timeout_s, session_timeout_s=self.timeout_s).session
            session.upload(path)
            lib = session.load_module(os.path.basename(path))
            device = session.cpu()
            tensors = random_args(args, device)
            lib["main"](*tensors)
            return summarize_ms(list(self.plan.evaluator(lib, device)(*tensors).results))
        except Exception as exc:  # noqa: BLE001 - a device that fails a candidate is data
            return JobFailure(f"rpc: {last_line(exc)}")

    def measure(self, libs: list[tuple[str, tuple[ArgSpec, ...]]]) -> list[dict[str, float] | JobFailure]:
        with ThreadPoolExecutor(max_workers=max(1, registered_servers(self.address))) as pool:
            return list(pool.map(lambda item: self._measure_one(*item), libs))

    def close(self) -> None:
        pass


class Measurer:
    """Builds a batch of candidates in parallel, then has the runner time the built ones."""

    def __init__(self, runner: LocalRunner | RpcRunner, target: dict[str, Any], builders: int, build_timeout_s: float) -> None:
        self.runner = runner
        self.target = target
        self.build_timeout_s = build_timeout_s
        self._builders = WorkerPool(builders, warmup=_import_tvm)
        # Candidates per build-then-measure round: enough to keep every builder busy twice.
        self.batch_size = 2 * self._builders.size
        self._tmp = tempfile.TemporaryDirectory(prefix="edgeprune-tune-")
        self._count = 0

    @property
    def device_key(self) -> str:
        return self.runner.device_key

    def measure(self, candidates: list[tuple[Kernel, Config]]) -> list[Outcome]:
        """Build ``(kernel, config)`` candidates in parallel, then time the built ones in turn."""
        return self.measure_rounds(candidates, 1)[0]

    def measure_rounds(self, candidates: list[tuple[Kernel, Config]], rounds: int) -> list[list[Outcome]]:
        """Build once, then time every built candidate in each of ``rounds`` rounds, alternately.

        Candidates timed side by side in rounds see the same load, so their ranking does
        not depend on when each happened to be measured.
        """
        paths = []
        for _ in candidates:
            self._count += 1
            paths.append(str(Path(self._tmp.name) / f"cand{self._count}.so"))
        jobs = [(kernel, config, self.target, path) for (kernel, config), path in zip(candidates, paths)]
        built = self._builders.map(build_kernel, jobs, self.build_timeout_s)
        ok = [i for i, b in enumerate(built) if not isinstance(b, JobFailure)]
        results = []
        for _ in range(rounds):
            timed = self.runner.measure([(paths[i], candidates[i][0].args) for i in ok])
            outcomes = [Outcome(None, f"build: {b.error}") if isinstance(b, JobFailure) else Outcome(None) for b in built]
            for i, t in zip(ok, timed):
                outcomes[i] = Outcome(None, f"run: {t.error}") if isinstance(t, JobFailure) else Outcome(t)
            results.append(outcomes)
        for path in paths:
            Path(path).unlink(missing_ok=True)
        return results

    def close(self) -> None:
        self._builders.close()
        self.runner.close()
        self._tmp.cleanup()


def device_key_of(device: str) -> str:
    """The device key tuning records carry: ``local``, or the tracker key of ``rpc://HOST:PORT/KEY``."""
    if device == "local":
        return device

    return TrackerAddress.parse(device).key


def make_runner(device: str, plan: TimingPlan, timeout_s: float) -> LocalRunner | RpcRunner:
    device_key_of(device)  # validates the form
    return LocalRunner(plan, timeout_s) if device == "local" else RpcRunner(device, plan, timeout_s)
