"""Fixtures for the runner tests: a compiled host artifact, and servers on the RPC farm (``farm``)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from edgeprune import compiler
from tests.compiler.checkpoints import USER_MODEL, USER_SHAPE, make_checkpoint

SERVER_KEYS = ("test-key", "drop-key", "frozen-key")  # tests that kill or freeze a server use their own key


@pytest.fixture(scope="session")
def host_artifact(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runners")
    return compiler.compile(make_checkpoint(root / "ckpt", USER_MODEL, USER_SHAPE), out=root / "art")


@pytest.fixture(scope="module")
def servers(farm) -> dict[str, subprocess.Popen]:
    """A server under each of ``SERVER_KEYS``, started side by side (each imports TVM)."""
    return farm.servers(*SERVER_KEYS)


@pytest.fixture(scope="module")
def server(farm, servers) -> str:
    """The ``--device`` value of the server under ``test-key``, which every test leaves running."""
    return str(farm.address("test-key"))
