"""Fixtures for the device tests: two builds of one model that differ in one kernel's schedule."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from edgeprune import compiler
from tests.compiler.checkpoints import make_checkpoint

SLOWED_FUNC = "fused_conv2d_add_relu"  # Chain's first conv: most of the model's time at 96x96


@dataclass(frozen=True)
class BuildPair:
    old: Path  # the default build
    same: Path  # a copy of it, as a rebuild of the same commit gives
    slowed: Path  # the first conv with a deliberately poor config (1 channel per tile, 4-wide vectors)
    slowed_workload: str
    default_config: dict  # the slowed conv's config in the default build


@pytest.fixture(scope="session")
def build_pair(tmp_path_factory) -> BuildPair:
    root = tmp_path_factory.mktemp("pair")
    ckpt = make_checkpoint(root / "ckpt", "tests.pruning.nets:Chain", [1, 3, 96, 96])
    old = compiler.compile(ckpt, out=root / "old")
    same = Path(shutil.copytree(old, root / "same"))
    schedule = next(s for s in json.loads((old / "meta.json").read_text())["schedules"] if s["func"] == SLOWED_FUNC)
    poor = dict(schedule["config"], tile_co=1, vec=4, tile_y=1, parallel="rows_channels")
    slowed = compiler.compile(ckpt, out=root / "slowed", tuning_configs={schedule["workload"]: poor})
    return BuildPair(old, same, slowed, schedule["workload"], schedule["config"])
