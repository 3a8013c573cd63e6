"""Alternating timing: contenders take turns every round, warm-ups are not recorded."""

from __future__ import annotations

import time

import pytest

from edgeprune.base.timing import alternate_timers, medians, paired_ratios, wall_clock


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


def test_paired_ratios_compare_each_round_with_itself():
    """The machine doubles its latencies in round 3, between a's turn and b's: the whole-run
    medians land in different levels (b 2.4x a) while four rounds of five say 1.2x."""
    a_rounds, b_rounds = [10, 10, 10, 20, 20], [12, 12, 24, 24, 24]
    times = {"a": [v for v in a_rounds for _ in range(2)], "b": [v for v in b_rounds for _ in range(2)]}
    assert medians(times)["b"] / medians(times)["a"] == pytest.approx(2.4)
    assert paired_ratios(times, "a", runs=2) == {"a": 1.0, "b": pytest.approx(1.2)}
