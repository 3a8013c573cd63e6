"""``base.provenance``: the commit of the edgeprune checkout, dirty or not, and none outside one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgeprune.base import provenance
from edgeprune.base.errors import EdgepruneError
from tests.repo import REPO


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture()
def checkout(tmp_path, monkeypatch) -> Path:
    """A git repository laid out as an edgeprune checkout, taken as the source root."""
    root = tmp_path / "project"
    (root / "compiler").mkdir(parents=True)
    (root / "compiler" / "build.py").write_text("x = 1\n")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    monkeypatch.setattr(provenance, "SOURCE_ROOT", root)
    return root


def test_the_commit_of_a_clean_and_of_a_dirty_checkout(checkout):
    head = git(checkout, "rev-parse", "HEAD")
    assert provenance.source_commit() == head
    (checkout / "notes.txt").write_text("untracked files do not make it dirty")
    assert provenance.source_commit() == head
    (checkout / "compiler" / "build.py").write_text("x = 2\n")
    assert provenance.source_commit() == head + provenance.DIRTY


def test_no_commit_for_a_folder_inside_some_other_repository(checkout, monkeypatch):
    inner = checkout / "venv" / "site-packages"  # an installed wheel inside a user's project
    (inner / "compiler").mkdir(parents=True)
    monkeypatch.setattr(provenance, "SOURCE_ROOT", inner)
    assert provenance.source_commit() is None
    monkeypatch.setattr(provenance, "SOURCE_ROOT", checkout.parent)  # no repository at all
    assert provenance.source_commit() is None


def test_an_exported_commit_imports_ahead_of_the_installed_package(tmp_path):
    sha = provenance.resolve_commit("HEAD")
    assert sha == git(REPO, "rev-parse", "HEAD")
    dest = provenance.export_commit(sha, tmp_path)
    assert sorted(p.name for p in dest.iterdir()) == ["edgeprune"]
    found = subprocess.run(  # from the checkout's own folder, as CI would run it
        [sys.executable, "-P", "-c", "import edgeprune, edgeprune.compiler.build as b; print(edgeprune.__file__, b.__file__)"],
        cwd=REPO, env=dict(os.environ, PYTHONPATH=str(dest)), capture_output=True, text=True, check=True,
    ).stdout.split()
    assert all(Path(f).is_relative_to(dest / "edgeprune") for f in found), found


def test_a_revision_that_is_no_commit_is_one_error():
    with pytest.raises(EdgepruneError, match="no-such-branch: not a commit of the edgeprune checkout"):
        provenance.resolve_commit("no-such-branch")
