"""Alternating timing: contenders take turns every round, warm-ups are not recorded."""

from __future__ import annotations

import time

import pytest

from device.compare import alternate_timers, medians, wall_clock


def test_contenders_take_turns_and_warmups_are_not_recorded():
    calls: list[str] = []

    def timer(name: str, ms: float):
        def run() -> float:
            calls.append(name)
            return ms
        return run

    times = alternate_timers({"a": timer("a", 1.0), "b": timer("b", 2.0)}, rounds=3, runs=2, warmup=1)
    assert calls == ["a"] * 3 + ["b"] * 3 + ["a"] * 3 + ["b"] * 3 + ["a"] * 3 + ["b"] * 3
    assert times == {"a": [1.0] * 6, "b": [2.0] * 6}
    assert medians({"a": [3.0, 1.0, 2.0], "b": [5.0, 4.0]}) == {"a": 2.0, "b": 4.5}


def test_wall_clock_reports_milliseconds_per_call():
    seen = []
    timer = wall_clock(lambda s: (seen.append(s), time.sleep(s)), 0.01, calls=3)
    ms = timer()
    assert seen == [0.01] * 3
    assert ms == pytest.approx(10.0, abs=5.0)  # generous: a loaded machine oversleeps
