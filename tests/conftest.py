"""Fixtures every test folder may use: the CLI, a private results history, a local RPC farm."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from edgeprune.device.runners.localfarm import LocalFarm
from tests.repo import run_cli


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture(autouse=True, scope="session")
def private_cache_dir(tmp_path_factory):
    """Keep the results history that every ``edgeprune bench`` appends to out of the user's cache."""
    previous = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if previous is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = previous


@pytest.fixture(scope="module")
def farm(tmp_path_factory) -> Iterator[LocalFarm]:
    """TVM's tracker on a free port on 127.0.0.1; every server started through it is stopped with it."""
    with LocalFarm(tmp_path_factory.mktemp("farm")) as farm:
        yield farm
