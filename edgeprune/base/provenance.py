"""Which edgeprune source built something, and the source of another commit to build with.

An artifact records the git commit of the checkout that compiled it (``meta.json``
``git_commit``) so that two builds of two commits, timed against each other later (``bench
NEW --against OLD``), go into the history under their own commits rather than under whatever
the benchmarking shell's directory has checked out. ``export_commit`` writes a commit's
package, importable as ``edgeprune``, for ``compile --at-commit`` to run.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from pathlib import Path

from edgeprune.base.errors import EdgepruneError

SOURCE_ROOT = Path(__file__).resolve().parents[2]  # the checkout holding edgeprune/, compiler/, device/
DIRTY = "-dirty"  # appended when tracked files differ from the commit, as ``git describe --dirty`` does
PACKAGE = "edgeprune"
STAGES = ("compiler", "device", "pruning")  # top-level folders that install as edgeprune.<stage> (setup.py)


def git_text(*args: str, cwd: Path | None = None, timeout_s: float = 10) -> str | None:
    """``git ARGS`` run in ``cwd`` (default the source root): its stripped output, or None when git fails."""
    data = _git_bytes(*args, cwd=cwd, timeout_s=timeout_s)
    return None if data is None else data.decode(errors="replace").strip()


def _git_bytes(*args: str, cwd: Path | None = None, timeout_s: float = 10) -> bytes | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd or SOURCE_ROOT, capture_output=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def _is_checkout() -> bool:
    """Is the source root the top of a git repository of edgeprune (not a folder inside another)?"""
    top = git_text("rev-parse", "--show-toplevel")
    return top is not None and Path(top).resolve() == SOURCE_ROOT and (SOURCE_ROOT / "compiler").is_dir()


def source_commit() -> str | None:
    """HEAD of the edgeprune checkout (with ``-dirty`` if tracked files changed), or None.

    None for an installed wheel: its folder is no checkout of edgeprune, even when it sits in
    some other repository (a virtual environment inside a user's project).
    """
    head = git_text("rev-parse", "HEAD") if _is_checkout() else None
    if not head:
        return None
    changed = git_text("status", "--porcelain", "--untracked-files=no")
    return head + (DIRTY if changed else "")


def resolve_commit(rev: str) -> str:
    """The full SHA of ``rev`` (a SHA, branch, tag, ``HEAD~3``) in the edgeprune checkout."""
    if not _is_checkout():
        raise EdgepruneError(f"{rev}: edgeprune runs from {SOURCE_ROOT}, which is not a git checkout of edgeprune")
    sha = git_text("rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}")
    if not sha:
        raise EdgepruneError(f"{rev}: not a commit of the edgeprune checkout at {SOURCE_ROOT}")
    return sha


def export_commit(sha: str, dest: Path) -> Path:
    """Write commit ``sha``'s package under ``dest`` as ``dest/edgeprune``; returns ``dest``.

    The stage folders go inside the package, as ``setup.py`` maps them, so ``dest`` on
    ``PYTHONPATH`` imports that commit's ``edgeprune`` (ahead of the installed one, whose
    editable finder Python consults after the path).
    """
    listed = set((git_text("ls-tree", "--name-only", sha) or "").split())
    present = [name for name in (PACKAGE, *STAGES) if name in listed]
    if PACKAGE not in present:
        raise EdgepruneError(f"{sha[:12]}: this commit has no {PACKAGE}/ package to compile with")
    data = _git_bytes("archive", "--format=tar", sha, *present, timeout_s=120)
    if data is None:
        raise EdgepruneError(f"{sha[:12]}: git archive failed in {SOURCE_ROOT}")
    source = dest / "source"
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(source, filter="data")
    shutil.move(source / PACKAGE, dest / PACKAGE)
    for stage in present[1:]:
        shutil.move(source / stage, dest / PACKAGE / stage)
    shutil.rmtree(source)
    return dest
