"""Contenders timed alternately, so their medians and ratios are comparable within one run.

On a shared machine the load drifts; timing contender A for a minute and then B compares two
different machines. Alternating rounds (each contender warmed up, then timed a few times,
then the next) spreads the drift over all of them alike. The drift is not always smooth: a
shared machine switches between load levels, and then the medians of two contenders' whole-run
times can fall in different levels. ``paired_ratios`` compares each round with itself instead.

A contender is a ``Timer``: a callable that runs it (once, or a batch) and returns
milliseconds. ``wall_clock`` makes one from any Python callable.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Timer = Callable[[], float]


def alternate_timers(timers: Mapping[str, Timer], rounds: int, runs: int = 1, warmup: int = 0) -> dict[str, list[float]]:
    """Every timed measurement per contender: ``rounds`` x (``warmup`` untimed + ``runs`` timed) each, in turn."""
    times: dict[str, list[float]] = {name: [] for name in timers}
    for _ in range(rounds):
        for name, timer in timers.items():
            for _ in range(warmup):
                timer()
            times[name].extend(timer() for _ in range(runs))
    return times


def medians(times: Mapping[str, Sequence[float]]) -> dict[str, float]:
    return {name: statistics.median(values) for name, values in times.items()}


def paired_ratios(times: Mapping[str, Sequence[float]], anchor: str, runs: int) -> dict[str, float]:
    """Per contender, the median over rounds of its round median over ``anchor``'s in that round.

    ``times`` as ``alternate_timers`` returns them, ``runs`` timed values per contender per round.
    """
    def round_medians(values: Sequence[float]) -> list[float]:
        return [statistics.median(values[i:i + runs]) for i in range(0, len(values), runs)]

    base = round_medians(times[anchor])
    return {
        name: statistics.median(v / b for v, b in zip(round_medians(values), base, strict=True))
        for name, values in times.items()
    }


def wall_clock(fn: Callable[..., object], *args: Any, calls: int = 1) -> Timer:
    """Milliseconds per call of ``fn(*args)``, averaged over ``calls`` back-to-back calls."""

    def timer() -> float:
        start = time.perf_counter()
        for _ in range(calls):
            fn(*args)
        return (time.perf_counter() - start) * 1e3 / calls

    return timer
