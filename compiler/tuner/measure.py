"""Build candidates in parallel worker processes, then time them on a device through its runner.

A candidate is one workload's PrimFunc scheduled with one config. Builders (``WorkerPool``)
apply the rule and compile the PrimFunc alone into a shared library; the device's runner
(``device.spec.DeviceSpec.runner``, the same runners ``edgeprune bench`` uses) times the built
libraries with random inputs (``Runner.time_kernels``), while no build runs, so builds do not
disturb timings. Every candidate ends as a latency summary or an error string; nothing a
candidate does can stop the run.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tvm

from edgeprune.base.workers import JobFailure, WorkerPool
from edgeprune.compiler import android
from edgeprune.compiler.schedules.base import Config, Rule, Workload
from edgeprune.compiler.targets import triple
from edgeprune.device.runners.kernels import ArgSpec, TimingPlan, load_tvm
from edgeprune.device.spec import DeviceSpec


@dataclass(frozen=True)
class Kernel:
    """What a builder needs to schedule one workload: its rule and PrimFunc (as TVM JSON)."""

    rule: Rule
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


def kernel_of(rule: Rule, workload: Workload, func: Any) -> Kernel:
    return Kernel(rule, workload, tvm.ir.save_json(func), arg_specs(func))


def build_kernel(kernel: Kernel, config: Config, target: dict[str, Any], path: str) -> float:
    """Schedule and compile ``kernel`` with ``config`` into ``path``; returns build seconds."""
    started = time.perf_counter()
    scheduled = kernel.rule.schedule(tvm.ir.load_json(kernel.func_json), kernel.workload, config)
    mod = tvm.IRModule({"main": scheduled.with_attr("global_symbol", "main")})
    executable = tvm.compile(mod, tvm.target.Target(dict(target)))
    if triple(target).endswith("android"):
        android.export_library(executable, path)  # cross-linked for the phone
    else:
        executable.export_library(path)
    return time.perf_counter() - started


class Measurer:
    """Builds a batch of candidates in parallel, then has the device's runner time the built ones.

    ``timeout_s`` bounds each timing (and every wait on a device of the farm).
    """

    def __init__(self, device: DeviceSpec, plan: TimingPlan, target: dict[str, Any], builders: int,
                 build_timeout_s: float, timeout_s: float = 60.0) -> None:
        self.device = device
        self.runner = device.runner(timeout_s=timeout_s)
        self.plan = plan
        self.target = target
        self.build_timeout_s = build_timeout_s
        self._builders = WorkerPool(builders, warmup=load_tvm)
        # Candidates per build-then-measure round: enough to keep every builder busy twice.
        self.batch_size = 2 * self._builders.size
        self._tmp = tempfile.TemporaryDirectory(prefix="edgeprune-tune-")
        self._count = 0

    @property
    def device_key(self) -> str:
        """The device key of the tuning records this measurer's results become."""
        return self.device.tuning_key

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
            timed = self.runner.time_kernels([(paths[i], candidates[i][0].args) for i in ok], self.plan)
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
