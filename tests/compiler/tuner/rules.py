"""Test-only schedule rules, importable by the tuner's spawned worker processes.

``FaultyConv1x1`` is the real 1x1-conv rule (default config) behind one knob, ``fault``, whose
values make ``apply`` crash the worker (segfault), hang, or raise; ``PoorDefaultConv1x1``
starts from a deliberately slow config (scalar, one output channel per tile) so that a short
search has something real to find.
"""

from __future__ import annotations

import ctypes
import time

from edgeprune.compiler.schedules.base import Config, Space, Workload
from edgeprune.compiler.schedules.cpu.conv1x1 import Conv1x1

FAULTS = ["none", "segfault", "hang", "raise"]


class FaultyConv1x1(Conv1x1):
    """One knob, ``fault``; every value but ``none`` makes the build fail its own way."""

    name = "faulty_conv1x1"

    def space(self, wl: Workload) -> Space:
        return {"fault": FAULTS}

    def default(self, wl: Workload) -> Config:
        return {"fault": "none"}

    def wasted(self, wl: Workload, config: Config) -> str | None:
        return None  # every fault is worth a trial: the tests want the build to fail

    def apply(self, sch, wl: Workload, config: Config) -> None:
        fault = config["fault"]
        if fault == "segfault":
            ctypes.string_at(0)
        elif fault == "hang":
            time.sleep(3600)
        elif fault == "raise":
            raise RuntimeError("injected failure")
        plain = Conv1x1(self.hw)
        plain.apply(sch, wl, plain.default(wl))


class PoorDefaultConv1x1(Conv1x1):
    def default(self, wl: Workload) -> Config:
        space = self.space(wl)
        return {"tile_co": 1, "vec": min(space["vec"]), "nvec": 1, "unroll_k": 1, "order": "spatial", "panel": 0}
