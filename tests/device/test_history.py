"""The SQLite results history: round trip, concurrent writers, baselines, and bad files."""

import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from edgeprune.base.errors import EdgepruneError
from edgeprune.device.history import History, Run, default_history_path, parse_ref
from edgeprune.device.spec import DeviceSpec
from edgeprune.device.stats import summarize
from tests.repo import REPO

TARGET = {"kind": "llvm", "mtriple": "x86_64-linux-gnu", "mcpu": "znver4", "num-cores": 2}


def make_run(timings, model="tiny", key="local:ci", threads=1, commit=None, target=TARGET) -> Run:
    return Run(model=model, artifact_sha256="ab" * 32, target=target, device_key=key, device="local (ci, x86_64)",
               edgeprune_version="0.1.0", tvm_version="0.27.0", git_commit=commit, threads=threads,
               stats=summarize(list(timings), first_ms=9.0), time="2026-11-30T06:00:00+00:00")


def test_a_run_round_trips_with_its_raw_timings(tmp_path):
    path = tmp_path / "h.sqlite"
    timings = [1.5, 1.25, 1.75, 1.0, 2.0]
    with History(path) as history:
        recorded = history.record(make_run(timings, commit="c0ffee" * 6 + "c0ff"))
        assert recorded.id == 1
    with History(path) as history:  # reopened: the schema is checked, not recreated
        back = history.run(1)
    assert back.stats.timings_ms == tuple(timings) and back.stats.median_ms == 1.5 and back.stats.first_ms == 9.0
    assert back.target == TARGET and back.git_commit.startswith("c0ffee") and back.threads == 1
    assert back.series == recorded.series
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "2"
    assert db.execute("SELECT count(*) FROM timings WHERE run_id = 1").fetchone()[0] == 5


WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    sys.path.insert(0, {repo!r})
    from edgeprune.device.history import History
    from tests.device.test_history import make_run
    path, writer, go = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    while not go.exists():
        time.sleep(0.005)
    for i in range(10):
        with History(path) as history:
            history.record(make_run([writer + i / 100 + k / 1000 for k in range(40)], model=f"w{{writer}}"))
""")


def test_concurrent_writers_lose_nothing(tmp_path):
    path, go = tmp_path / "h.sqlite", tmp_path / "go"
    script = WRITER.format(repo=str(REPO))
    procs = [subprocess.Popen([sys.executable, "-c", script, str(path), str(w), str(go)], stderr=subprocess.PIPE, text=True)
             for w in range(6)]
    time.sleep(0.5)
    go.touch()  # every writer starts at once, on a history none of them has created yet
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read()
    with History(path) as history:
        runs = history.runs()
        assert len(runs) == 60 and len({r.id for r in runs}) == 60
        for w in range(6):
            mine = history.runs(model=f"w{w}")
            assert sorted(round(r.stats.timings_ms[0], 6) for r in mine) == [round(w + i / 100, 6) for i in range(10)]
            assert all(len(r.stats.timings_ms) == 40 for r in mine)


def test_baselines(tmp_path):
    with History(tmp_path / "h.sqlite") as history:
        current = make_run([5.0] * 5)
        assert history.baseline("last", current) is None and history.baseline("best:3", current) is None
        slow = history.record(make_run([4.0] * 5, commit="aaaa1111" + "0" * 32))
        fast = history.record(make_run([3.0] * 5, commit="bbbb2222" + "0" * 32))
        newest = history.record(make_run([3.5] * 5, commit="cccc3333" + "0" * 32))
        history.record(make_run([1.0] * 5, threads=2))  # another series: never a baseline for 1 thread
        history.record(make_run([1.0] * 5, model="other"))
        assert history.baseline("last", current).id == newest.id
        assert history.baseline("best:3", current).id == fast.id
        assert history.baseline("best:1", current).id == newest.id
        assert history.baseline("commit:aaaa11", current).id == slow.id
        assert history.baseline("commit:BBBB2222", current).id == fast.id
        assert history.baseline(f"run:{slow.id}", current).id == slow.id
        # A recorded run's "last" is the run before it.
        assert history.baseline("last", newest).id == fast.id
        with pytest.raises(EdgepruneError, match="no run #99"):
            history.baseline("run:99", current)
        with pytest.raises(EdgepruneError, match="at commit dddd"):
            history.baseline("commit:dddd", current)
        assert [r.id for r in history.series(current, limit=2)] == [newest.id, fast.id]


@pytest.mark.parametrize("ref", ["", "latest", "run:x", "best:0", "best:", "commit:xyz", "commit:abc", "last:1"])
def test_bad_references(ref):
    with pytest.raises(EdgepruneError, match="expected run:ID, commit:SHA, best:N or last"):
        parse_ref(ref)


def test_bad_history_files(tmp_path):
    junk = tmp_path / "junk.sqlite"
    junk.write_text("not a database, just text " * 100)
    with pytest.raises(EdgepruneError, match="junk.sqlite: not an edgeprune history"):
        History(junk)
    foreign = tmp_path / "foreign.sqlite"
    sqlite3.connect(foreign).execute("CREATE TABLE t (x)")
    with pytest.raises(EdgepruneError, match="foreign.sqlite: an SQLite file without edgeprune's meta table"):
        History(foreign)
    future = tmp_path / "future.sqlite"
    History(future).close()
    with sqlite3.connect(future) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(EdgepruneError, match="schema version 99 is not supported"):
        History(future)
    with pytest.raises(EdgepruneError, match="exists and is not a history file"):
        History(tmp_path)


def test_names_and_default_path(monkeypatch, tmp_path):
    assert DeviceSpec.parse("rpc://127.0.0.1:9190/s21").history_key == "rpc:s21"
    assert DeviceSpec.parse("local").history_key.startswith("local:")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_history_path() == tmp_path / "edgeprune" / "history.sqlite"


def test_a_history_that_cannot_take_the_run_is_one_error(tmp_path):
    with History(tmp_path / "h.sqlite") as history:
        history._db.execute("PRAGMA query_only = ON")  # as a read-only file or folder would
        with pytest.raises(EdgepruneError, match="cannot record the run"):
            history.record(make_run([1.0, 2.0]))


def test_an_ab_comparison_records_both_runs_in_one_transaction(tmp_path):
    path = tmp_path / "h.sqlite"
    detail = {"verdict": "slower", "ratio": 1.1, "ci_low": 1.08, "ci_high": 1.12, "kernels_changed": []}
    with History(path) as history:
        recorded = history.record_comparison(make_run([1.1, 1.2]), make_run([1.0, 1.1]), detail)
        assert (recorded.id, recorded.new.id, recorded.old.id, recorded.kind) == (1, 2, 1, "ab")
        assert history.baseline("last", make_run([1.0])).id == recorded.new.id  # NEW: the newest state
        history._db.execute("PRAGMA query_only = ON")
        with pytest.raises(EdgepruneError, match="cannot record the comparison"):
            history.record_comparison(make_run([1.0]), make_run([1.0]), detail)
    with History(path) as history:
        (back,) = history.comparisons()
        assert back.detail == detail and back.verdict == "slower" and back.new.stats.timings_ms == (1.1, 1.2)
        assert len(history.runs()) == 2  # the refused comparison left no run behind


def test_a_version_1_history_gains_the_comparisons_table_and_keeps_its_runs(tmp_path):
    path = tmp_path / "v1.sqlite"
    with History(path) as history:
        history.record(make_run([1.0, 2.0]))
    with sqlite3.connect(path) as db:  # what edgeprune before A/B comparisons wrote
        db.execute("DROP TABLE comparisons")
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    with History(path) as history:
        assert [r.id for r in history.runs()] == [1] and history.comparisons() == []
        history.record_comparison(make_run([1.0]), make_run([1.0]), {"verdict": "no change", "ratio": 1.0,
                                                                     "ci_low": 0.9, "ci_high": 1.1})
    assert sqlite3.connect(path).execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "2"
