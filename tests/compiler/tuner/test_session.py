"""Tuning sessions on a real kernel: failures recorded, improvement found, resume without re-measuring."""

from __future__ import annotations

import json
import math

import pytest

from edgeprune.compiler.tuner.log import read_log, tuning_configs
from edgeprune.compiler.tuner.measure import Measurer
from edgeprune.compiler.tuner.session import TuneSession, allocate
from edgeprune.device.runners.kernels import TimingPlan
from edgeprune.device.spec import DeviceSpec
from tests.compiler.tuner.rules import FAULTS, FaultyConv1x1, PoorDefaultConv1x1
from tests.compiler.tuner.workloads import task_with_rule

PLAN = TimingPlan(repeat=3, min_repeat_ms=5)


@pytest.fixture(scope="module")
def measurer(host_target):
    m = Measurer(DeviceSpec.parse("local"), PLAN, host_target, builders=2, build_timeout_s=4, timeout_s=60)
    yield m
    m.close()


def test_allocation_follows_weights_within_floors_and_caps():
    assert allocate([3.0, 1.0], [1, 1], [100, 100], 42) == [32, 10]
    assert allocate([3.0, 1.0, 0.0], [1, 1, 1], [5, 100, 100], 42) == [5, 36, 1]
    assert allocate([1.0, 1.0], [10, 1], [100, 100], 12) == [10, 2]
    assert allocate([0.7, 0.2, 0.1], [1, 1, 1], [50, 50, 50], 64) == [45, 13, 6]
    assert allocate([1.0, 1.0], [1, 1], [3, 3], 100) == [3, 3]


def test_crashing_and_hanging_candidates_are_recorded_and_survived(conv1x1_task, host_target, measurer, tmp_path):
    task = task_with_rule(conv1x1_task, FaultyConv1x1, host_target)
    log = tmp_path / "faults.jsonl"
    report = TuneSession([task], host_target, measurer, log, strategy="random").run(trials=len(FAULTS))
    records = {r.knobs["fault"]: r for r in read_log(log).records if r.strategy != "confirm"}
    assert set(records) == set(FAULTS)
    assert records["none"].ok and records["none"].cost > 0
    assert records["segfault"].error == "build: worker killed by SIGSEGV"
    assert records["hang"].error == "build: timed out after 4 s"
    assert records["raise"].error == "build: RuntimeError: injected failure"
    assert report.results[0].failures == 3 and report.results[0].best_knobs == {"fault": "none"}


def test_ga_improves_on_a_poor_default_and_resumes_without_remeasuring(conv1x1_task, host_target, measurer, tmp_path):
    task = task_with_rule(conv1x1_task, PoorDefaultConv1x1, host_target)
    log = tmp_path / "ga.jsonl"
    first = TuneSession([task], host_target, measurer, log, seed=1).run(trials=10)
    assert first.results[0].measured == 10 and not first.interrupted
    # A kill mid-write leaves a torn line; the resumed run skips it and replays the search.
    with open(log, "ab") as f:
        f.write(b'{"version": 1, "workload": "conv2d_1x1(n=1,ci=3')
    resumed = TuneSession([task], host_target, measurer, log, seed=1)
    assert resumed.done == 10 and resumed.torn_lines == 1
    second = resumed.run(trials=16)
    assert second.results[0].measured == 6 and second.results[0].trials == 16
    records = read_log(log).records
    trials = [json.dumps(r.knobs, sort_keys=True) for r in records if r.strategy != "confirm"]
    assert len(trials) == len(set(trials)) == 16
    # Each run ends by timing the default and its 3 best side by side, 3 rounds.
    confirms = [r for r in records if r.strategy == "confirm"]
    assert len(confirms) == 2 * 4 * 3 and confirms[-1] is records[-1]
    result = second.results[0]
    assert math.isfinite(result.best_ms)
    assert tuning_configs(log, host_target) == {task.key: result.best_knobs}
    # Scalar, one-channel tiles against 16 trials of the real space: clearly beaten.
    assert result.default_ms / result.best_ms > 1.5
