"""The tuning log: one JSON object per line, one line per measured candidate, append-only.

::

    {"version": 1, "workload": "conv2d_1x1(n=1,...):float32", "rule": "conv1x1",
     "target": {"kind": "llvm", ...}, "device_key": "local", "knobs": {"tile_co": 8, ...},
     "latency": {"median_ms": ..., "mean_ms": ..., "min_ms": ..., "max_ms": ..., "std_ms": ...,
                 "runs": 5},              # or "error": "build timed out after 30 s"
     "time": "2026-11-30T06:40:00+0000", "strategy": "ga"}

Each record is written with one ``os.write`` of the complete line to a file opened with
``O_APPEND``, then fsynced, so a kill at any moment leaves every earlier record intact and
at worst a torn final line, which readers skip; a writer first ends such a torn line so the
next record starts on a line of its own. Logs from several machines can be concatenated.

One tuning run writes a log at a time (``exclusive``): two runs resuming the same log would
each replay it and then measure the same next candidates.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeprune.base.errors import EdgepruneError
from edgeprune.base.formats import check_version
from edgeprune.compiler.schedules.base import Config

LOG_VERSION = 1


def target_key(target: dict[str, Any]) -> str:
    """A canonical string of a target dict: records match a target when these are equal."""
    return json.dumps(target, sort_keys=True)


@dataclass
class TuneRecord:
    workload: str
    rule: str
    target: dict[str, Any]
    device_key: str
    knobs: Config
    latency: dict[str, float] | None = None
    error: str | None = None
    time: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    strategy: str = ""

    @property
    def ok(self) -> bool:
        return self.latency is not None

    @property
    def cost(self) -> float:
        """What the tuner ranks by: the fastest repeat in ms (``inf`` for a failed candidate).

        On a shared machine other processes only ever add time to a repeat, so the minimum
        ranks schedules more reproducibly than the median; the log keeps every statistic.
        """
        if self.latency is None:
            return math.inf
        return float(self.latency.get("min_ms", self.latency["median_ms"]))

    def to_json(self) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "version": LOG_VERSION, "workload": self.workload, "rule": self.rule, "target": self.target,
            "device_key": self.device_key, "knobs": self.knobs,
        }
        if self.latency is not None:
            obj["latency"] = self.latency
        else:
            obj["error"] = self.error or "unknown error"
        obj["time"] = self.time
        if self.strategy:
            obj["strategy"] = self.strategy
        return obj

    @classmethod
    def from_json(cls, obj: Any) -> "TuneRecord":
        """Raises ``ValueError`` on anything but a version-1 record."""
        if not isinstance(obj, dict) or "version" not in obj or "workload" not in obj:
            raise ValueError("not a tuning record")
        check_version(obj["version"], LOG_VERSION, field="record version")
        try:
            latency = obj.get("latency")
            if latency is not None and not all(k in latency for k in ("median_ms", "runs")):
                raise ValueError("latency without median_ms/runs")
            if latency is None and "error" not in obj:
                raise ValueError("neither latency nor error")
            return cls(
                workload=str(obj["workload"]), rule=str(obj["rule"]), target=dict(obj["target"]),
                device_key=str(obj["device_key"]), knobs=dict(obj["knobs"]), latency=latency,
                error=obj.get("error"), time=str(obj.get("time", "")), strategy=str(obj.get("strategy", "")),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed record (field {exc})") from exc

    def matches(self, target: dict[str, Any], device_key: str | None) -> bool:
        return target_key(self.target) == target_key(target) and (device_key is None or self.device_key == device_key)


@dataclass
class LogContents:
    records: list[TuneRecord]
    torn_lines: int  # lines that are not complete JSON (cut by a kill), skipped


def read_log(path: str | os.PathLike[str]) -> LogContents:
    """Every complete record of ``path``; torn lines are skipped, foreign content is an error."""
    log = Path(path)
    try:
        data = log.read_bytes()
    except FileNotFoundError:
        raise EdgepruneError(f"{log}: no such tuning log") from None
    except OSError as exc:
        raise EdgepruneError(f"{log}: cannot read tuning log ({exc.strerror})") from exc
    records, torn, garbage = [], 0, []
    for number, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            if raw.lstrip().startswith(b"{"):  # the start of a record, cut by a kill
                torn += 1
            else:
                garbage.append(number)
            continue
        try:
            records.append(TuneRecord.from_json(obj))
        except ValueError as exc:
            raise EdgepruneError(f"{log}:{number}: not an edgeprune tuning log ({exc})") from None
    if (torn or garbage) and not records:
        raise EdgepruneError(f"{log}: not an edgeprune tuning log (no line is a JSON record)")
    if garbage:
        raise EdgepruneError(f"{log}:{garbage[0]}: not a tuning record, nor the start of one cut by a kill "
                             f"({len(garbage)} such line(s))")
    return LogContents(records, torn)


CONFIRM = "confirm"  # the strategy of records re-timing the top candidates side by side


def knobs_key(knobs: Config) -> str:
    """A canonical string of a config: the same knobs give the same string."""
    return json.dumps(knobs, sort_keys=True)


def best_records(
    records: list[TuneRecord], target: dict[str, Any], device_key: str | None = None
) -> dict[str, TuneRecord]:
    """The record whose knobs to use, per workload key, for ``target`` (and ``device_key`` if given).

    Where the tuner confirmed a workload (its top candidates and the default re-timed in
    alternating rounds, one ``confirm`` record per candidate and round), the knobs with the
    lowest median over their confirm rounds win: a single search-time measurement can be
    lucky, rounds side by side are not. Elsewhere the fastest successful record wins.
    """
    best: dict[str, TuneRecord] = {}
    rounds: dict[str, dict[str, list[TuneRecord]]] = {}
    for record in records:
        if not record.ok or not record.matches(target, device_key):
            continue
        if record.strategy == CONFIRM:
            rounds.setdefault(record.workload, {}).setdefault(knobs_key(record.knobs), []).append(record)
            continue
        current = best.get(record.workload)
        if current is None or record.cost < current.cost:
            best[record.workload] = record
    for workload, by_knobs in rounds.items():
        medians = [sorted(group, key=lambda r: r.cost)[(len(group) - 1) // 2] for group in by_knobs.values()]
        best[workload] = min(medians, key=lambda r: r.cost)
    return best


@contextlib.contextmanager
def exclusive(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold the log's lock (an advisory ``flock`` on the log itself) for the block, or fail at
    once with one error if another run holds it; the lock ends with the process. A log this
    creates and nothing writes is removed again."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    created = not target.exists()
    fd = os.open(target, os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise EdgepruneError(f"{target}: another edgeprune tune is writing this log; wait for it or choose "
                                 "another --log") from None
        yield
    finally:
        if created and os.fstat(fd).st_size == 0:
            target.unlink(missing_ok=True)
        os.close(fd)


class LogWriter:
    """Appends records to a log, each durable before ``append`` returns."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if self._ends_torn():
            os.write(self._fd, b"\n")

    def _ends_torn(self) -> bool:
        size = os.fstat(self._fd).st_size
        if size == 0:
            return False
        with open(self.path, "rb") as f:
            f.seek(size - 1)
            return f.read(1) != b"\n"

    def append(self, record: TuneRecord) -> None:
        line = (json.dumps(record.to_json(), separators=(",", ":")) + "\n").encode()
        written = os.write(self._fd, line)
        if written != len(line):  # a full disk; finish the line so later records stay readable
            os.write(self._fd, line[written:])
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> "LogWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def tuning_configs(
    path: str | os.PathLike[str], target: dict[str, Any], device_key: str | None = None
) -> dict[str, Config]:
    """Workload key -> knobs of its fastest record in the log at ``path`` for ``target``/``device_key``."""
    return configs_of(read_log(path).records, target, device_key)


def configs_of(records: list[TuneRecord], target: dict[str, Any], device_key: str | None = None) -> dict[str, Config]:
    """``tuning_configs`` of records already read."""
    return {key: record.knobs for key, record in best_records(records, target, device_key).items()}


def untried_defaults(
    records: list[TuneRecord], schedules: list[dict[str, Any]], target: dict[str, Any], device_key: str | None = None
) -> list[str]:
    """Workload keys that took a tuned config from ``records`` (a tuning log's) although the log
    never measured their current default (``schedules``: an artifact's ``meta.json`` entries).

    That happens when edgeprune's default for a workload changed after the search: the search
    seeded from and compared against the old default, so its pick may be slower than the new one.
    """
    measured: dict[str, set[str]] = {}
    for record in records:
        if record.ok and record.matches(target, device_key):
            measured.setdefault(record.workload, set()).add(knobs_key(record.knobs))
    return [
        s["workload"] for s in schedules
        if s.get("tuned") and "default" in s and knobs_key(s["default"]) not in measured.get(s["workload"], set())
    ]
