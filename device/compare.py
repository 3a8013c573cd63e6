"""Latency of several contenders measured alternately, for side-by-side tables and choices.

On a shared machine the load drifts; timing contender A for a minute and then B compares two
different machines. Alternating rounds (each contender warmed up, then timed a few times,
then the next) spreads the drift over all of them alike, so their medians and ratios are
comparable within one run even when the absolute times are not. The drift is not always
smooth: this machine switches between load levels (ONNX Runtime on TopFormer-Tiny took 8.6 ms
in some rounds and 14.7 ms in others of one run), and then the medians of two contenders'
whole-run times can fall in different levels. ``paired_ratios`` compares each round with
itself instead.

A contender is a ``Timer``: a callable that runs it (once, or a batch) and returns
milliseconds. ``wall_clock`` makes one from any Python callable, ``kernel_timer`` from a
compiled TVM kernel (timed by TVM's own evaluator); ``alternate`` times whole-model engines
on one input.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

Engine = Callable[[np.ndarray], object]
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


def kernel_timer(lib: Any, args: Sequence[Any], calls: int) -> Timer:
    """Milliseconds per call of a compiled kernel's ``main`` on ``args`` (TVM tensors), over ``calls`` calls."""
    import tvm

    evaluator = lib.mod.time_evaluator("main", tvm.cpu(), number=calls, repeat=1, min_repeat_ms=0)
    return lambda: evaluator(*args).results[0] * 1e3


def alternate(engines: Mapping[str, Engine], x: np.ndarray, rounds: int, runs: int) -> dict[str, list[float]]:
    """Milliseconds of every timed run per engine on ``x``: ``rounds`` x (1 warm-up + ``runs`` timed) each.

    The warm-up fills the caches and lets the previous engine's spinning threads go back to sleep.
    """
    return alternate_timers({name: wall_clock(run, x) for name, run in engines.items()}, rounds, runs, warmup=1)


def onnxruntime_engine(onnx_path: str | Path, threads: int, input_name: str = "input") -> Engine:
    """ONNX Runtime's CPU provider on ``onnx_path`` with ``threads`` intra-op threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {input_name: x})
