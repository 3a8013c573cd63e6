"""Fixtures for the compiler tests: a checkpoint of a small user model and its compiled artifact.

Compiling takes seconds, so both are built once per session.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeprune import compiler
from tests.compiler.checkpoints import USER_MODEL, USER_SHAPE, make_checkpoint


@pytest.fixture(scope="session")
def user_checkpoint(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("user") / "ckpt", USER_MODEL, USER_SHAPE)


@pytest.fixture(scope="session")
def user_artifact(user_checkpoint, tmp_path_factory) -> Path:
    return compiler.compile(user_checkpoint, out=tmp_path_factory.mktemp("art") / "user")
