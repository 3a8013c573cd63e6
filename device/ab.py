"""``edgeprune bench NEW --against OLD``: both artifacts timed in alternating rounds on one device.

Both are loaded at once on the same device (``Runner.open_all``: one RPC session for a phone),
warmed up, then timed in rounds: each round runs OLD, then NEW, each ``settle`` untimed runs
and then ``per_round`` timed ones. Switching artifacts costs the next few runs (the caches hold
the other model's weights and maps: the first timed runs after a switch were 10-30% slower
here, even after TVM's own untimed call), so every timed batch starts settled and follows the
other artifact's batch alike. Each round's median per artifact is one pair for
``device.paired``; all timed runs also make each artifact's ``Measurement`` for the history.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeprune.device.paired import PairedComparison, paired_compare
from edgeprune.device.runners.base import Measurement, Runner, artifact_sha256
from edgeprune.device.stats import summarize


@dataclass(frozen=True)
class RoundPlan:
    """How the two artifacts are timed: at least ``rounds`` rounds and ``min_time_s`` seconds."""

    rounds: int = 40
    per_round: int = 2  # timed runs of each artifact per round
    settle: int = 3  # untimed runs of each per round, before its timed ones
    warmup: int = 5  # untimed runs of each before the first round
    number: int = 1  # calls averaged into each timed run
    min_time_s: float = 0.0


@dataclass(frozen=True)
class ABResult:
    new: Measurement
    old: Measurement
    new_rounds_ms: list[float]  # per-round medians, paired with old_rounds_ms
    old_rounds_ms: list[float]
    comparison: PairedComparison

    def to_json(self) -> dict:
        return {"mode": "ab", "comparison": self.comparison.to_json(), "new": self.new.to_json(),
                "old": self.old.to_json(), "new_rounds_ms": self.new_rounds_ms, "old_rounds_ms": self.old_rounds_ms}


def measure_ab(runner: Runner, new: Path, old: Path, threshold: float, plan: RoundPlan = RoundPlan(),
               threads: int | None = None, on_round: Callable[[int, int], None] | None = None) -> ABResult:
    """Time NEW and OLD alternately (see the module docstring) and decide with ``device.paired``.

    ``on_round(done, expected)`` is called after every round.
    """
    with runner.open_all([old, new], threads) as (loaded_old, loaded_new):
        first = {"old": loaded_old.first_run(), "new": loaded_new.first_run()}
        loaded = {"old": loaded_old, "new": loaded_new}
        if plan.warmup:
            for model in loaded.values():
                model.time(1, plan.warmup)
        timings: dict[str, list[float]] = {"old": [], "new": []}
        rounds: dict[str, list[float]] = {"old": [], "new": []}
        started = time.monotonic()
        expected = plan.rounds
        while len(rounds["old"]) < plan.rounds or time.monotonic() - started < plan.min_time_s:
            for name in ("old", "new"):
                batch = loaded[name].time(plan.number, plan.settle + plan.per_round)[plan.settle:]
                timings[name] += batch
                rounds[name].append(float(np.median(batch)))
            done = len(rounds["old"])
            if plan.min_time_s > 0:
                per_round_s = (time.monotonic() - started) / done
                expected = max(plan.rounds, done, math.ceil(plan.min_time_s / max(per_round_s, 1e-6)))
            if on_round is not None:
                on_round(done, max(expected, done))
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")

        def measurement(name: str, path: Path) -> Measurement:
            model = loaded[name]
            return Measurement(stats=summarize(timings[name], first[name]), device=model.device, target=model.target,
                               artifact_sha256=artifact_sha256(path), threads=model.threads, measured_at=stamp,
                               runner=runner.name, warmup=plan.warmup, number=plan.number, min_time_s=plan.min_time_s)

        comparison = paired_compare(rounds["new"], rounds["old"], threshold)
        return ABResult(measurement("new", new), measurement("old", old), rounds["new"], rounds["old"], comparison)
