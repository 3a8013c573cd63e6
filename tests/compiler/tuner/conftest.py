"""Fixtures for the tuner tests: a tiny ONNX model and its 1x1-conv task, built once."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeprune.compiler.targets import resolve_target
from edgeprune.compiler.tuner.tasks import model_tasks
from tests.compiler.tuner.workloads import save_onnx


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory) -> Path:
    return save_onnx(tmp_path_factory.mktemp("tuner") / "tiny.onnx")


@pytest.fixture(scope="session")
def host_target() -> dict:
    return resolve_target("host")


@pytest.fixture(scope="session")
def tiny_tasks(tiny_onnx, host_target):
    return model_tasks(tiny_onnx, host_target)


@pytest.fixture(scope="session")
def conv1x1_task(tiny_tasks):
    return next(t for t in tiny_tasks if t.workload.op == "conv2d_1x1")
