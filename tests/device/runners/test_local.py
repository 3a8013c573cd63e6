"""``--device local`` on a real compiled artifact (its CLI report is checked beside RPC's in test_rpc)."""

import time

import numpy as np
import pytest
import tvm
from tvm import te

from edgeprune.base.errors import EdgepruneError
from edgeprune.base.workers import JobFailure
from edgeprune.device.runners.base import chunk_size
from edgeprune.device.runners.kernels import TimingPlan
from edgeprune.device.spec import DeviceSpec
from tests.compiler.checkpoints import sample_input


def test_local_runner_measures(host_artifact):
    result = DeviceSpec.parse("local").runner().measure(host_artifact, runs=7, warmup=1, threads=1)
    s = result.stats
    assert s.runs == 7 and len(s.timings_ms) == 7
    assert 0 < s.min_ms <= s.median_ms <= s.p90_ms <= s.p95_ms <= s.max_ms
    assert s.first_ms > 0
    assert result.threads == 1 and len(result.artifact_sha256) == 64
    assert result.target["kind"] == "llvm" and not result.partial


def test_min_time_keeps_timing_beyond_the_runs(host_artifact):
    started = time.monotonic()
    result = DeviceSpec.parse("local").runner().measure(host_artifact, runs=2, warmup=1, min_time_s=0.5, threads=1)
    assert time.monotonic() - started >= 0.5
    assert result.stats.runs > 2 and result.min_time_s == 0.5


def test_run_computes_the_outputs_here(host_artifact):
    from edgeprune.compiler.artifact import load_artifact

    x = sample_input(load_artifact(host_artifact).inputs[0].shape)
    np.testing.assert_array_equal(DeviceSpec.parse("local").runner().run(host_artifact, x), load_artifact(host_artifact)(x))


def test_chunks_hold_about_a_second_of_runs():
    assert chunk_size(2.0, runs_left=10, seconds_left=0) == 10  # what is left, when it is short
    assert chunk_size(2.0, runs_left=5000, seconds_left=0) == 500  # at most a second's worth
    assert chunk_size(100.0, runs_left=0, seconds_left=0.25) == 3  # enough for the time left
    assert chunk_size(5000.0, runs_left=3, seconds_left=0) == 1  # slow models: one run per call


@pytest.mark.parametrize("device", ["gpu", "rpc://nowhere/s21", "rpc://host:9190/", "rpc://host:port/s21"])
def test_bad_device_values(device):
    with pytest.raises(EdgepruneError, match="--device"):
        DeviceSpec.parse(device).runner()


def test_time_kernels_times_each_library_and_reports_failures_as_data(tmp_path):
    a = te.placeholder((64,), name="a")
    b = te.compute((64,), lambda i: a[i] * 2.0, name="b")
    mod = tvm.IRModule({"main": te.create_prim_func([a, b]).with_attr("global_symbol", "main")})
    path = tmp_path / "double.so"
    tvm.compile(mod, tvm.target.Target("llvm")).export_library(str(path))
    args = (((64,), "float32"), ((64,), "float32"))
    runner = DeviceSpec.parse("local").runner(timeout_s=60)
    try:
        timed, missing = runner.time_kernels([(str(path), args), (str(tmp_path / "absent.so"), args)],
                                             TimingPlan(repeat=3, min_repeat_ms=1, threads=1))
    finally:
        runner.close()
    assert timed["runs"] == 3 and 0 < timed["min_ms"] <= timed["median_ms"]
    assert isinstance(missing, JobFailure)
