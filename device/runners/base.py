"""The runner interface, the measurement every runner returns, and the loop that times.

A runner measures two things on its device: whole artifacts (``edgeprune bench``: ``open``,
``measure``, ``run``) and single kernel libraries (the tuner: ``time_kernels``). For an
artifact, it puts it on the device (``open``) and hands back a ``Loaded`` model. The
measuring loop is the same on every device, shaped like TFLite's benchmark_model: one cold
first run, ``warmup`` untimed runs, then timed runs until both ``runs`` runs and
``min_time_s`` seconds of timing are reached. Runs are timed in chunks of about a second, so a
device that drops or stops answering part-way (or a Ctrl-C) loses at most one chunk: the
exception carries the runs timed before it as a ``partial`` measurement.
"""

from __future__ import annotations

import hashlib
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edgeprune.base.errors import EdgepruneError
from edgeprune.base.workers import JobFailure
from edgeprune.compiler.artifact import LIB_FILE, META_FILE
from edgeprune.device.runners.kernels import KernelLibrary, TimingPlan
from edgeprune.device.stats import LatencyStats, summarize

CHUNK_S = 1.0  # timed runs per device call: about this many seconds' worth


class Loaded(Protocol):
    """An artifact loaded on a device, ready to run and to time."""

    device: str  # the device in words, for reports
    target: dict[str, Any]  # the artifact's target (meta.json)
    threads: int  # CPU threads it runs with; 0 = the device's default

    def first_run(self) -> float:
        """Milliseconds of one cold call (lazy initialization included)."""

    def time(self, number: int, repeat: int) -> list[float]:
        """Milliseconds per run, one value per repeat (each the mean of ``number`` runs)."""

    def __call__(self, *arrays: np.ndarray) -> np.ndarray | tuple[np.ndarray, ...]:
        """Run the model on the device; outputs come back as numpy arrays."""


@dataclass
class Measurement:
    """Latency statistics of one artifact on one device, with what was measured how.

    ``error`` is set only on a partial measurement (the device failed or the user interrupted
    after some timed runs): it says why the runs stopped.
    """

    stats: LatencyStats
    device: str
    target: dict[str, Any]
    artifact_sha256: str
    threads: int
    measured_at: str
    runner: str = "local"
    warmup: int = 0
    number: int = 1
    min_time_s: float = 0.0
    error: str | None = None

    @property
    def partial(self) -> bool:
        return self.error is not None

    def to_json(self) -> dict[str, Any]:
        obj = {**self.stats.to_json(), "device": self.device, "target": self.target,
               "artifact_sha256": self.artifact_sha256, "threads": self.threads, "time": self.measured_at,
               "runner": self.runner, "warmup": self.warmup, "number": self.number, "min_time_s": self.min_time_s,
               "partial": self.partial}
        if self.error is not None:
            obj["error"] = self.error
        return obj


class MeasurementFailed(EdgepruneError):
    """The device failed during the timed runs; ``partial`` holds the runs timed before."""

    def __init__(self, message: str, partial: Measurement) -> None:
        super().__init__(message)
        self.partial = partial


class MeasurementInterrupted(KeyboardInterrupt):
    """Ctrl-C during the timed runs; ``partial`` holds the runs timed before."""

    def __init__(self, partial: Measurement) -> None:
        super().__init__()
        self.partial = partial


def artifact_sha256(path: Path) -> str:
    """Checksum of the artifact's library and meta.json, so any rebuild changes it."""

    digest = hashlib.sha256()
    for name in (META_FILE, LIB_FILE):
        file = path / name
        if file.is_file():
            digest.update(name.encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


def chunk_size(ms_per_timing: float, runs_left: int, seconds_left: float) -> int:
    """Timed runs for the next device call: what is still needed, at most ``CHUNK_S`` worth."""
    ms_per_timing = max(ms_per_timing, 1e-3)
    needed = max(runs_left, math.ceil(seconds_left * 1e3 / ms_per_timing), 1)
    return min(needed, max(1, int(CHUNK_S * 1e3 / ms_per_timing)))


class Runner(ABC):
    """Where artifacts and kernels run: ``open`` loads an artifact there, ``measure`` and
    ``run`` use that; ``time_kernels`` times kernel libraries there."""

    name: str

    @abstractmethod
    def open(self, path: Path, threads: int | None = None) -> AbstractContextManager[Loaded]:
        """Load the artifact directory ``path`` on the device (``threads``: None = default)."""

    @contextmanager
    def open_all(self, paths: Sequence[Path], threads: int | None = None) -> Iterator[list[Loaded]]:
        """Load every artifact of ``paths`` on one device at once, for timing them alternately.

        Here each is ``open``ed in turn; a runner whose ``open`` may land on another device each
        time (RPC: the tracker picks a free one) loads them all in one session instead.
        """
        with ExitStack() as stack:
            yield [stack.enter_context(self.open(path, threads)) for path in paths]

    @abstractmethod
    def time_kernels(self, libraries: Sequence[KernelLibrary], plan: TimingPlan) -> list[dict[str, float] | JobFailure]:
        """Latency summary (``kernels.summarize_ms``) of each library's ``main``, in order; a
        library that fails to load, crashes or hangs is a ``JobFailure``, never an exception."""

    def close(self) -> None:
        """Release what ``time_kernels`` holds (worker processes); the runner stays usable."""

    def run(self, path: str | Path, *arrays: np.ndarray) -> np.ndarray | tuple[np.ndarray, ...]:
        """Outputs of the artifact on ``arrays``, computed on the device."""
        with self.open(Path(path)) as loaded:
            return loaded(*arrays)

    def measure(
        self,
        path: str | Path,
        runs: int = 50,
        warmup: int = 5,
        number: int = 1,
        min_time_s: float = 0.0,
        threads: int | None = None,
        on_chunk: Callable[[int, int], None] | None = None,
    ) -> Measurement:
        """Time the artifact: see the module docstring. ``on_chunk(done, expected)`` is called
        after every chunk with the timed runs so far and the runs expected in all."""
        root = Path(path)
        with self.open(root, threads) as loaded:
            checksum = artifact_sha256(root)
            first = loaded.first_run()
            per_run = float(np.mean(loaded.time(1, warmup))) if warmup > 0 else first
            expected = max(runs, math.ceil(min_time_s * 1e3 / max(per_run * number, 1e-3)))
            timings: list[float] = []

            def measurement(error: str | None = None) -> Measurement:
                return Measurement(
                    stats=summarize(timings, first), device=loaded.device, target=loaded.target,
                    artifact_sha256=checksum, threads=loaded.threads, measured_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    runner=self.name, warmup=warmup, number=number, min_time_s=min_time_s, error=error,
                )

            started = time.monotonic()
            try:
                while len(timings) < runs or time.monotonic() - started < min_time_s:
                    seconds_left = min_time_s - (time.monotonic() - started)
                    chunk = loaded.time(number, chunk_size(per_run * number, runs - len(timings), seconds_left))
                    timings += chunk
                    per_run = float(np.median(chunk)) / number
                    if on_chunk is not None:
                        on_chunk(len(timings), max(expected, len(timings)))
            except EdgepruneError as exc:
                if not timings:
                    raise
                kept = f"{exc} ({len(timings)} timed runs kept)"
                raise MeasurementFailed(kept, measurement(str(exc))) from exc
            except KeyboardInterrupt as exc:
                if not timings:
                    raise
                raise MeasurementInterrupted(measurement("interrupted")) from exc
            return measurement()
