"""Fixtures for the runner tests: a compiled host artifact, and a real TVM RPC farm on 127.0.0.1."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeprune import compiler
from edgeprune.device.runners.localfarm import LocalFarm, stop  # noqa: F401 - stop: tests/compiler/tuner imports it from here
from tests.compiler.conftest import USER_MODEL, USER_SHAPE, make_checkpoint

SERVER_KEYS = ("test-key", "drop-key", "frozen-key")  # tests that kill or freeze a server use their own key


@pytest.fixture(scope="session")
def host_artifact(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runners")
    return compiler.compile(make_checkpoint(root / "ckpt", USER_MODEL, USER_SHAPE), out=root / "art")


@pytest.fixture(scope="module")
def farm(tmp_path_factory) -> Iterator[LocalFarm]:
    """TVM's tracker on a free port; every server started through it is stopped with it."""
    with LocalFarm(tmp_path_factory.mktemp("farm")) as farm:
        yield farm


@pytest.fixture(scope="module")
def servers(farm) -> dict[str, subprocess.Popen]:
    """A server under each of ``SERVER_KEYS``, started side by side (each imports TVM)."""
    return farm.servers(*SERVER_KEYS)


@pytest.fixture(scope="module")
def server(farm, servers) -> str:
    """The ``--device`` value of the server under ``test-key``, which every test leaves running."""
    return str(farm.address("test-key"))
