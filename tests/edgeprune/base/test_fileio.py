import importlib
import os
import stat

import pytest

from edgeprune.base import fileio
from edgeprune.base.errors import EdgepruneError
from edgeprune.base.fileio import atomic_path, write_json


def test_atomic_path_replaces_only_on_success(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
    with atomic_path(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_write_json_creates_parents(tmp_path):
    write_json(tmp_path / "a" / "b.json", {"x": 1})
    assert (tmp_path / "a" / "b.json").read_text().strip().startswith("{")


def test_written_files_get_the_users_umask_not_mkstemps_0600(tmp_path):
    previous = os.umask(0o022)
    try:
        importlib.reload(fileio)
        fileio.write_json(tmp_path / "a.json", {})
    finally:
        os.umask(previous)
        importlib.reload(fileio)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o644


def test_a_directory_in_the_way_is_one_clear_error_and_nothing_is_written(tmp_path):
    (tmp_path / "out.json").mkdir()
    with pytest.raises(EdgepruneError, match="is a directory"):
        write_json(tmp_path / "out.json", {"x": 1})
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"] and not any((tmp_path / "out.json").iterdir())
