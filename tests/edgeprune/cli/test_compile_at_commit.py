"""``edgeprune compile --at-commit REV``: the OLD build of an A/B, compiled by that commit's edgeprune."""

from __future__ import annotations

import json
import subprocess

import numpy as np

from edgeprune.compiler.artifact import load_artifact
from tests.compiler.checkpoints import make_checkpoint, reference, sample_input
from tests.repo import REPO


def test_compiles_with_the_commit_and_records_it(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # the checkpoint's model class lives in tests/
    ckpt = make_checkpoint(tmp_path / "ckpt", "tests.pruning.nets:Chain", [1, 3, 32, 32])
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    result = cli("compile", str(ckpt), "--out", str(tmp_path / "old"), "--at-commit", "HEAD", "--input-shape", "1,3,32,40")
    assert result.returncode == 0, result.stderr
    assert f"compiling with edgeprune at {head[:12]} (HEAD)" in result.stdout and "wrote" in result.stdout
    meta = json.loads((tmp_path / "old" / "meta.json").read_text())
    assert meta["git_commit"] == head and meta["inputs"][0]["shape"] == [1, 3, 32, 40]  # options reach the commit
    art = load_artifact(tmp_path / "old")
    x = sample_input(art.inputs[0].shape, seed=1)
    np.testing.assert_allclose(art(x), reference(ckpt, x), atol=1e-4)


def test_an_unknown_revision_is_one_line_and_writes_nothing(cli, tmp_path):
    result = cli("compile", str(tmp_path / "ckpt"), "--out", str(tmp_path / "old"), "--at-commit", "no-such-tag")
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        f"edgeprune: error: no-such-tag: not a commit of the edgeprune checkout at {REPO}"]
    assert not (tmp_path / "old").exists()
