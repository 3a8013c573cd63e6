"""The results history: every ``edgeprune bench`` run, its statistics and raw timings, in SQLite.

One file (``--history PATH``, default :func:`default_history_path`) with a ``meta`` table
(``schema_version``), ``runs`` (one row per bench run: what was measured, where, with which
versions, and its summary statistics), ``timings`` (the raw per-run milliseconds, which
the regression test needs) and ``comparisons`` (``bench NEW --against OLD``: the two runs
timed together and the paired decision on them). The database is in WAL mode with a busy timeout and each run is
written in one ``BEGIN IMMEDIATE`` transaction, so several processes (CI jobs sharing a
history on one machine) can append at once without losing or tearing a run.

A *series* is the runs of one model on one device with one target at one thread count: the
runs whose latencies are comparable. ``last`` and ``best:N`` baselines come from the series.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgeprune.base.errors import EdgepruneError
from edgeprune.base.formats import check_version
from edgeprune.base.provenance import git_text
from edgeprune.compiler.artifact import read_meta
from edgeprune.device.runners.base import artifact_sha256
from edgeprune.device.spec import DeviceSpec
from edgeprune.device.stats import LatencyStats

SCHEMA_VERSION = 2  # 2 added ``comparisons``; a version-1 file gains the table when opened
BUSY_TIMEOUT_MS = 30_000
STAT_COLUMNS = ("first_ms", "median_ms", "mean_ms", "std_ms", "min_ms", "max_ms", "p90_ms", "p95_ms", "fps", "runs")
_COMPARISONS = """
CREATE TABLE IF NOT EXISTS comparisons (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    kind TEXT NOT NULL,
    new_run INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    old_run INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    verdict TEXT NOT NULL,
    ratio REAL NOT NULL, ci_low REAL NOT NULL, ci_high REAL NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS comparisons_new_run ON comparisons (new_run);
"""
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    model TEXT NOT NULL,
    artifact_sha256 TEXT NOT NULL,
    target TEXT NOT NULL,
    device_key TEXT NOT NULL,
    device TEXT NOT NULL,
    edgeprune_version TEXT NOT NULL,
    tvm_version TEXT NOT NULL,
    git_commit TEXT,
    threads INTEGER NOT NULL,
    first_ms REAL NOT NULL, median_ms REAL NOT NULL, mean_ms REAL NOT NULL, std_ms REAL NOT NULL,
    min_ms REAL NOT NULL, max_ms REAL NOT NULL, p90_ms REAL NOT NULL, p95_ms REAL NOT NULL,
    fps REAL NOT NULL, runs INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_series ON runs (model, device_key, target, threads, id);
CREATE TABLE IF NOT EXISTS timings (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    ms REAL NOT NULL,
    PRIMARY KEY (run_id, idx)
) WITHOUT ROWID;
""" + _COMPARISONS
AB = "ab"
REF_FORMS = "run:ID, commit:SHA, best:N or last"


@dataclass(frozen=True)
class Run:
    """One bench run as the history holds it; ``id`` is None until it is recorded."""

    model: str
    artifact_sha256: str
    target: dict[str, Any]
    device_key: str
    device: str
    edgeprune_version: str
    tvm_version: str
    git_commit: str | None
    threads: int
    stats: LatencyStats
    time: str
    id: int | None = None

    @property
    def series(self) -> tuple[str, str, str, int]:
        """(model, device key, target, threads): runs with the same series are comparable."""
        return self.model, self.device_key, canonical_json(self.target), self.threads

    def label(self) -> str:
        commit = f", commit {self.git_commit[:10]}" if self.git_commit else ""
        return f"run #{self.id} ({self.model} on {self.device_key}, {self.time}{commit})"


@dataclass(frozen=True)
class RecordedComparison:
    """Two runs timed together (``kind`` ``ab``: alternating rounds on one device) and the decision."""

    id: int
    time: str
    kind: str
    new: Run
    old: Run
    detail: dict[str, Any]  # the decision's JSON: verdict, ratio, ci_low, ci_high, ...

    @property
    def verdict(self) -> str:
        return self.detail["verdict"]


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def default_history_path() -> Path:
    """``$XDG_CACHE_HOME/edgeprune/history.sqlite`` (``~/.cache/...`` when the variable is unset)."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "edgeprune" / "history.sqlite"


def git_commit(recorded: Any = None, cwd: Path | None = None) -> str | None:
    """The commit that built the artifact (``git_commit`` in its meta.json), else HEAD of ``cwd``'s repo."""
    if isinstance(recorded, str):
        return recorded
    return git_text("rev-parse", "HEAD", cwd=cwd or Path.cwd()) or None


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def parse_ref(ref: str) -> tuple[str, str]:
    """Check a ``--baseline`` reference; returns (kind, argument)."""
    kind, _, arg = ref.partition(":")
    valid = (
        (kind == "last" and not arg)
        or (kind == "run" and arg.isdigit())
        or (kind == "best" and arg.isdigit() and int(arg) > 0)
        or (kind == "commit" and 4 <= len(arg) <= 40 and all(c in "0123456789abcdefABCDEF" for c in arg))
    )
    if not valid:
        raise EdgepruneError(f"--baseline {ref!r}: expected {REF_FORMS}")
    return kind, arg.lower()


class History:
    """An open history file. Use as a context manager, or call :meth:`close`."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_file():
            raise EdgepruneError(f"{self.path}: exists and is not a history file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        try:
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._init_schema()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise EdgepruneError(f"{self.path}: not an edgeprune history (SQLite says: {exc})") from exc
        except EdgepruneError:
            self._db.close()
            raise

    def __enter__(self) -> "History":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def _init_schema(self) -> None:
        # Switching to WAL needs a moment of exclusive access; a concurrent opener may hold it.
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        if mode.lower() != "wal":
            raise EdgepruneError(f"{self.path}: cannot use WAL mode (journal mode stays {mode!r})")
        self._db.execute("PRAGMA foreign_keys = ON")
        with self._transaction():
            tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "meta" in tables:
                row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
                found = None if row is None else int(row[0]) if row[0].isdigit() else row[0]
                if found == 1:  # version 1 lacks only the comparisons table
                    self._create(_COMPARISONS)
                    self._db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
                    found = SCHEMA_VERSION
                check_version(found, SCHEMA_VERSION, where=str(self.path), field="history schema version")
            elif tables - {"sqlite_sequence"}:
                raise EdgepruneError(f"{self.path}: an SQLite file without edgeprune's meta table; not a history")
            else:
                self._create(_SCHEMA)
                self._db.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    def _create(self, schema: str) -> None:
        for statement in schema.split(";"):
            if statement.strip():
                self._db.execute(statement)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def record(self, run: Run) -> Run:
        """Append ``run`` and its raw timings in one transaction; returns it with its id."""
        try:
            with self._transaction():
                run_id = self._insert_run(run)
        except sqlite3.Error as exc:  # a read-only file or folder, a full disk
            raise EdgepruneError(f"{self.path}: cannot record the run ({exc})") from exc
        return replace(run, id=run_id)

    def _insert_run(self, run: Run) -> int:
        s = run.stats
        columns = ("time", "model", "artifact_sha256", "target", "device_key", "device", "edgeprune_version",
                   "tvm_version", "git_commit", "threads", *STAT_COLUMNS)
        values = (run.time, run.model, run.artifact_sha256, canonical_json(run.target), run.device_key, run.device,
                  run.edgeprune_version, run.tvm_version, run.git_commit, run.threads,
                  *(getattr(s, c) for c in STAT_COLUMNS))
        cursor = self._db.execute(f"INSERT INTO runs ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", values)
        run_id = int(cursor.lastrowid)
        self._db.executemany("INSERT INTO timings (run_id, idx, ms) VALUES (?, ?, ?)",
                             [(run_id, i, ms) for i, ms in enumerate(s.timings_ms)])
        return run_id

    def record_comparison(self, new: Run, old: Run, comparison: dict[str, Any], kind: str = AB) -> RecordedComparison:
        """Append OLD, then NEW (timed together), and their comparison in one transaction.

        OLD goes first so that NEW is the series' ``last`` run: the newest state of the model.

        ``comparison`` is the decision's JSON (``device.paired.PairedComparison.to_json``, plus
        whatever else the caller keeps with it, e.g. the kernels that changed); it must carry
        ``verdict``, ``ratio``, ``ci_low`` and ``ci_high``.
        """
        try:
            with self._transaction():
                old_id = self._insert_run(old)
                new_id = self._insert_run(new)
                stamp = now_utc()
                cursor = self._db.execute(
                    "INSERT INTO comparisons (time, kind, new_run, old_run, verdict, ratio, ci_low, ci_high, detail) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (stamp, kind, new_id, old_id, comparison["verdict"], comparison["ratio"], comparison["ci_low"],
                     comparison["ci_high"], canonical_json(comparison)),
                )
        except sqlite3.Error as exc:
            raise EdgepruneError(f"{self.path}: cannot record the comparison ({exc})") from exc
        return RecordedComparison(int(cursor.lastrowid), stamp, kind, replace(new, id=new_id), replace(old, id=old_id),
                                  comparison)

    def comparisons(self) -> list[RecordedComparison]:
        """Every recorded comparison, oldest first."""
        rows = self._db.execute("SELECT id, time, kind, new_run, old_run, detail FROM comparisons ORDER BY id").fetchall()
        return [RecordedComparison(cid, stamp, kind, self.run(new_id), self.run(old_id), json.loads(detail))
                for cid, stamp, kind, new_id, old_id, detail in rows]

    def _select(self, where: str = "", params: tuple[Any, ...] = (), order: str = "id", limit: int | None = None) -> list[Run]:
        sql = f"SELECT * FROM runs {('WHERE ' + where) if where else ''} ORDER BY {order}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        cursor = self._db.execute(sql, params)
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, r)) for r in cursor.fetchall()]
        return [self._run_from_row(row) for row in rows]

    def _run_from_row(self, row: dict[str, Any]) -> Run:
        timings = tuple(ms for (ms,) in self._db.execute("SELECT ms FROM timings WHERE run_id = ? ORDER BY idx", (row["id"],)))
        stats = LatencyStats(**{c: row[c] for c in STAT_COLUMNS}, timings_ms=timings)
        return Run(
            model=row["model"], artifact_sha256=row["artifact_sha256"], target=json.loads(row["target"]),
            device_key=row["device_key"], device=row["device"], edgeprune_version=row["edgeprune_version"],
            tvm_version=row["tvm_version"], git_commit=row["git_commit"], threads=row["threads"], stats=stats,
            time=row["time"], id=row["id"],
        )

    def run(self, run_id: int) -> Run:
        found = self._select("id = ?", (run_id,))
        if not found:
            raise EdgepruneError(f"{self.path}: no run #{run_id}")
        return found[0]

    def runs(self, model: str | None = None, device_key: str | None = None) -> list[Run]:
        """All runs (oldest first), optionally of one model and/or one device."""
        clauses, params = [], []
        for column, value in (("model", model), ("device_key", device_key)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        return self._select(" AND ".join(clauses), tuple(params))

    def series(self, like: Run, limit: int | None = None, before: int | None = None) -> list[Run]:
        """Runs of ``like``'s series, newest first (at most ``limit``, ids below ``before``)."""
        model, key, target, threads = like.series
        where = "model = ? AND device_key = ? AND target = ? AND threads = ?"
        params: tuple[Any, ...] = (model, key, target, threads)
        if before is not None:
            where += " AND id < ?"
            params += (before,)
        return self._select(where, params, order="id DESC", limit=limit)

    def baseline(self, ref: str, like: Run) -> Run | None:
        """The run ``ref`` names for comparing ``like`` against (not yet recorded, or recorded: then older runs only).

        ``run:ID`` is that run; ``commit:SHA`` the newest run of the series at a commit starting
        with SHA; ``best:N`` the lowest median of the series' last N runs; ``last`` the newest.
        None when the series has no earlier run (``last``, ``best:N``); a missing ``run:`` or
        ``commit:`` is an error, since the user named it.
        """
        kind, arg = parse_ref(ref)
        if kind == "run":
            return self.run(int(arg))
        if kind == "commit":
            model, key, target, threads = like.series
            found = self._select(
                "model = ? AND device_key = ? AND target = ? AND threads = ? AND git_commit LIKE ? AND id < ?",
                (model, key, target, threads, arg + "%", like.id if like.id is not None else 2**62),
                order="id DESC", limit=1,
            )
            if not found:
                raise EdgepruneError(f"{self.path}: no run of {model} on {key} ({threads} threads) at commit {arg}")
            return found[0]
        earlier = self.series(like, limit=int(arg) if kind == "best" else 1, before=like.id)
        if not earlier:
            return None
        return min(earlier, key=lambda r: r.stats.median_ms) if kind == "best" else earlier[0]


def run_for_artifact(artifact: str | os.PathLike[str], stats: LatencyStats, threads: int, device: str = "local",
                     description: str | None = None, model: str | None = None) -> Run:
    """The history entry of ``stats`` measured of ``artifact`` on ``--device device`` (not yet recorded).

    ``model`` defaults to the artifact directory's name; the versions are those that built the
    artifact (its meta.json), which decide the code that was timed.
    """

    root = Path(artifact)
    meta = read_meta(root)
    return Run(
        model=model or root.resolve().name,
        artifact_sha256=artifact_sha256(root),
        target=meta.target,
        device_key=DeviceSpec.parse(device).history_key,
        device=description or DeviceSpec.parse(device).history_key,
        edgeprune_version=meta.edgeprune_version,
        tvm_version=meta.tvm_version,
        git_commit=git_commit(meta.git_commit),
        threads=int(threads or 0),  # 0: the device's default (RPC without --threads)
        stats=stats,
        time=now_utc(),
    )


def run_from_measurement(measurement: Any, artifact: str | os.PathLike[str], device: str, model: str | None = None) -> Run:
    """The history entry of a runner's ``Measurement`` of ``artifact``."""
    return run_for_artifact(artifact, measurement.stats, measurement.threads, device, measurement.device, model)
