"""Time an artifact on this machine's CPU with TVM's ``time_evaluator``."""

from __future__ import annotations

import hashlib
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from device.stats import LatencyStats, summarize


@dataclass
class Measurement:
    stats: LatencyStats
    device: str
    target: dict[str, Any]
    artifact_sha256: str
    threads: int
    measured_at: str

    def to_json(self) -> dict[str, Any]:
        return {**self.stats.to_json(), "device": self.device, "target": self.target,
                "artifact_sha256": self.artifact_sha256, "threads": self.threads, "time": self.measured_at}


def artifact_sha256(path: Path) -> str:
    """Checksum of the artifact's library and meta.json, so any rebuild changes it."""
    digest = hashlib.sha256()
    for name in ("meta.json", "model.so"):
        file = path / name
        if file.is_file():
            digest.update(name.encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


class LocalRunner:
    """Warm-up runs, then ``runs`` individually timed runs (each the mean of ``number`` calls)."""

    name = "local"

    def measure(self, path: str | Path, runs: int = 50, warmup: int = 5, number: int = 1,
                threads: int | None = None) -> Measurement:
        from compiler.artifact import load_artifact
        from compiler.threads import default_num_threads

        root = Path(path)
        artifact = load_artifact(root, num_threads=threads)
        first = artifact.time(number=1, repeat=1)[0]
        if warmup:
            artifact.time(number=1, repeat=warmup)
        timings = artifact.time(number=number, repeat=runs)
        return Measurement(
            stats=summarize(timings, first),
            device=f"local ({platform.node()}, {platform.processor() or platform.machine()})",
            target=artifact.meta.target,
            artifact_sha256=artifact_sha256(root),
            threads=threads or default_num_threads(),
            measured_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        )
