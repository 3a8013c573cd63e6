"""One small Adreno artifact per test session, shared by the compiler and device tests.

Compiling and cross-linking take several seconds, so the first test that asks builds it (under
pytest's session temp dir) and the others reuse it; tests that modify it work on a copy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from edgeprune import compiler
from tests.compiler.checkpoints import USER_MODEL, make_checkpoint

SHAPE = [1, 3, 20, 28]
_built: dict[str, Path] = {}


def user_adreno_artifact(tmp_path_factory) -> Path:
    """The test net (``tests.compiler.nets``) compiled for adreno660."""
    if "user" not in _built:
        root = tmp_path_factory.mktemp("adreno")
        ckpt = make_checkpoint(root / "ckpt", USER_MODEL, SHAPE)
        _built["user"] = compiler.compile(ckpt, target="adreno660", out=root / "art")
    return _built["user"]


def copy_of(artifact: Path, dest: Path) -> Path:
    return Path(shutil.copytree(artifact, dest))
