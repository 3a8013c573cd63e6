"""``--device local`` on a real compiled artifact (its CLI report is checked beside RPC's in test_rpc)."""

import time

import numpy as np
import pytest

from edgeprune.base.errors import EdgepruneError
from edgeprune.device.runners import runner_for
from edgeprune.device.runners.base import chunk_size
from tests.compiler.conftest import sample_input


def test_local_runner_measures(host_artifact):
    result = runner_for("local").measure(host_artifact, runs=7, warmup=1, threads=1)
    s = result.stats
    assert s.runs == 7 and len(s.timings_ms) == 7
    assert 0 < s.min_ms <= s.median_ms <= s.p90_ms <= s.p95_ms <= s.max_ms
    assert s.first_ms > 0
    assert result.threads == 1 and len(result.artifact_sha256) == 64
    assert result.target["kind"] == "llvm" and not result.partial


def test_min_time_keeps_timing_beyond_the_runs(host_artifact):
    started = time.monotonic()
    result = runner_for("local").measure(host_artifact, runs=2, warmup=1, min_time_s=0.5, threads=1)
    assert time.monotonic() - started >= 0.5
    assert result.stats.runs > 2 and result.min_time_s == 0.5


def test_run_computes_the_outputs_here(host_artifact):
    from edgeprune.compiler.artifact import load_artifact

    x = sample_input(load_artifact(host_artifact).inputs[0].shape)
    np.testing.assert_array_equal(runner_for("local").run(host_artifact, x), load_artifact(host_artifact)(x))


def test_chunks_hold_about_a_second_of_runs():
    assert chunk_size(2.0, runs_left=10, seconds_left=0) == 10  # what is left, when it is short
    assert chunk_size(2.0, runs_left=5000, seconds_left=0) == 500  # at most a second's worth
    assert chunk_size(100.0, runs_left=0, seconds_left=0.25) == 3  # enough for the time left
    assert chunk_size(5000.0, runs_left=3, seconds_left=0) == 1  # slow models: one run per call


@pytest.mark.parametrize("device", ["gpu", "rpc://nowhere/s21", "rpc://host:9190/", "rpc://host:port/s21"])
def test_bad_device_values(device):
    with pytest.raises(EdgepruneError, match="--device"):
        runner_for(device)
