"""Latency statistics in the shape TFLite's benchmark_model and MLPerf Mobile report them.

The JSON of ``edgeprune bench`` carries these keys at the top level: ``median_ms mean_ms
std_ms min_ms max_ms p90_ms p95_ms fps runs`` plus ``first_ms`` (the cold first run) and
the raw per-run timings, which a regression test (Mann-Whitney U) needs rather than a summary.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class LatencyStats:
    first_ms: float
    median_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    p90_ms: float
    p95_ms: float
    fps: float
    runs: int
    timings_ms: tuple[float, ...]

    def to_json(self) -> dict:
        obj = asdict(self)
        obj["timings_ms"] = list(self.timings_ms)
        return obj


def summarize(timings_ms: list[float], first_ms: float) -> LatencyStats:
    """Statistics of the timed runs (warm-up excluded); FPS is 1000 / median."""
    if not timings_ms:
        raise ValueError("no timed runs")
    values = np.asarray(timings_ms, dtype=np.float64)
    median = float(np.median(values))
    return LatencyStats(
        first_ms=float(first_ms),
        median_ms=median,
        mean_ms=float(values.mean()),
        std_ms=float(statistics.stdev(timings_ms)) if len(timings_ms) > 1 else 0.0,
        min_ms=float(values.min()),
        max_ms=float(values.max()),
        p90_ms=float(np.percentile(values, 90)),
        p95_ms=float(np.percentile(values, 95)),
        fps=1000.0 / median if median > 0 else float("inf"),
        runs=len(timings_ms),
        timings_ms=tuple(float(v) for v in values),
    )
