"""Timing one built candidate: warm repeats of at least ``min_repeat_ms``, or cold single calls."""

from __future__ import annotations

from edgeprune.compiler.tuner.measure import build_kernel
from edgeprune.device.runners.kernels import TimingPlan, time_library


def test_warm_and_cold_plans_time_a_built_kernel(conv1x1_task, host_target, tmp_path):
    path = str(tmp_path / "k.so")
    build_kernel(conv1x1_task.kernel, conv1x1_task.rule.default(conv1x1_task.workload), host_target, path)
    warm = time_library(path, conv1x1_task.kernel.args, TimingPlan(repeat=3, min_repeat_ms=5, threads=1))
    cold = time_library(path, conv1x1_task.kernel.args, TimingPlan(repeat=4, threads=1, cold=True))
    assert warm["runs"] == 3 and cold["runs"] == 4
    assert 0 < warm["min_ms"] <= warm["max_ms"] and 0 < cold["min_ms"] <= cold["max_ms"]
