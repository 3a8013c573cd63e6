"""``--device local``: the artifact on this machine's CPU, in this process."""

from __future__ import annotations

import platform
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.compiler.artifact import load_artifact
from edgeprune.compiler.threads import default_num_threads
from edgeprune.device.runners.base import Runner


@dataclass
class LocalModel:
    """A host artifact loaded here (``compiler.artifact.Artifact``) with its thread count."""

    artifact: Any
    threads: int
    device: str

    @property
    def target(self) -> dict[str, Any]:
        return self.artifact.meta.target

    def first_run(self) -> float:
        return self.artifact.first_run_ms()

    def time(self, number: int, repeat: int) -> list[float]:
        return self.artifact.time(number=number, repeat=repeat)

    def __call__(self, *arrays: np.ndarray) -> np.ndarray | tuple[np.ndarray, ...]:
        return self.artifact(*arrays)


class LocalRunner(Runner):
    name = "local"

    @contextmanager
    def open(self, path: Path, threads: int | None = None) -> Iterator[LocalModel]:
        artifact = load_artifact(path, num_threads=threads)
        yield LocalModel(artifact, threads or default_num_threads(),
                         f"local ({platform.node()}, {platform.processor() or platform.machine()})")
