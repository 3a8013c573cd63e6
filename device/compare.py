"""Latency of several engines on one input, measured alternately, for side-by-side tables.

On a shared machine the load drifts; timing engine A for a minute and then engine B compares
two different machines. Alternating rounds (each engine warmed up, then timed a few times,
then the next engine) spreads the drift over all engines alike, so their medians and ratios
are comparable within one run even when the absolute times are not.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

Engine = Callable[[np.ndarray], object]


def alternate(engines: Mapping[str, Engine], x: np.ndarray, rounds: int, runs: int) -> dict[str, list[float]]:
    """Milliseconds of every timed run per engine: ``rounds`` x (1 warm-up + ``runs`` timed) each."""
    times: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(rounds):
        for name, run in engines.items():
            run(x)  # warm-up: caches, and the previous engine's spinning threads going back to sleep
            for _ in range(runs):
                start = time.perf_counter()
                run(x)
                times[name].append((time.perf_counter() - start) * 1e3)
    return times


def onnxruntime_engine(onnx_path: str | Path, threads: int, input_name: str = "input") -> Engine:
    """ONNX Runtime's CPU provider on ``onnx_path`` with ``threads`` intra-op threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {input_name: x})
