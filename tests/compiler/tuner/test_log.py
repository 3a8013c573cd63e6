"""The tuning log: durable appends, torn lines, best-record lookup, clear errors."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from edgeprune.base.errors import EdgepruneError
from edgeprune.compiler.tuner.log import LogWriter, TuneRecord, best_records, read_log, tuning_configs, untried_defaults
from tests.repo import REPO

TARGET = {"kind": "llvm", "mcpu": "znver4", "num-cores": 2}
OTHER_TARGET = {"kind": "llvm", "mcpu": "cortex-a76", "num-cores": 8}


def record(workload: str, ms: float | None, target=TARGET, device: str = "local", tile: int = 8) -> TuneRecord:
    latency = {"median_ms": ms, "mean_ms": ms, "min_ms": ms, "max_ms": ms, "std_ms": 0.0, "runs": 3} if ms else None
    return TuneRecord(workload, "conv1x1", target, device, {"tile_co": tile}, latency, None if ms else "build: boom")


def test_round_trip_and_best_per_workload_target_device(tmp_path):
    log = tmp_path / "t.jsonl"
    with LogWriter(log) as writer:
        for r in (record("a", 2.0, tile=1), record("a", 1.0, tile=2), record("a", None, tile=3), record("b", 5.0),
                  record("a", 0.5, target=OTHER_TARGET, tile=4), record("a", 0.7, device="pixel", tile=5)):
            writer.append(r)
    contents = read_log(log)
    assert contents.torn_lines == 0 and len(contents.records) == 6
    assert contents.records[2].error == "build: boom" and contents.records[2].cost == float("inf")
    best = best_records(contents.records, TARGET)
    assert best["a"].knobs == {"tile_co": 5} and best["b"].knobs == {"tile_co": 8}
    assert best_records(contents.records, TARGET, "local")["a"].knobs == {"tile_co": 2}
    assert tuning_configs(log, OTHER_TARGET) == {"a": {"tile_co": 4}}
    assert tuning_configs(log, {"kind": "opencl"}) == {}
    first = json.loads(log.read_text().splitlines()[0])
    assert first["version"] == 1 and set(first) >= {"workload", "target", "device_key", "knobs", "latency", "time"}


def test_tuned_workloads_whose_current_default_the_log_never_measured(tmp_path):
    """A default changed after the search: the search never compared its pick with the new default."""
    log = tmp_path / "t.jsonl"
    with LogWriter(log) as writer:
        for r in (record("a", 1.0, tile=4), record("a", 2.0, tile=8), record("b", 1.0, tile=4), record("b", None, tile=8),
                  record("c", 1.0, tile=4), record("c", 2.0, tile=8, device="pixel")):
            writer.append(r)
    schedules = [
        {"workload": w, "tuned": True, "config": {"tile_co": 4}, "default": {"tile_co": 8}} for w in ("a", "b", "c")
    ] + [{"workload": "d", "tuned": False, "config": {"tile_co": 8}}]
    # b's default failed to build in the search, c's ran on another device only
    records = read_log(log).records
    assert untried_defaults(records, schedules, TARGET, "local") == ["b", "c"]
    assert untried_defaults(records, schedules, TARGET) == ["b"]


def test_confirmation_rounds_decide_over_a_lucky_search_record():
    def rnd(tile: int, ms: float) -> TuneRecord:
        r = record("a", ms, tile=tile)
        r.strategy = "confirm"
        return r

    records = [record("a", 0.5, tile=1), record("a", 0.8, tile=2)]
    assert best_records(records, TARGET)["a"].knobs == {"tile_co": 1}
    records += [rnd(1, 1.0), rnd(2, 0.9), rnd(1, 1.2), rnd(2, 2.0), rnd(1, 1.1), rnd(2, 0.95)]
    best = best_records(records, TARGET)["a"]
    assert best.knobs == {"tile_co": 2} and best.cost == 0.95  # medians: 1.1 vs 0.95


def test_torn_last_line_is_skipped_and_the_next_record_starts_a_new_line(tmp_path):
    log = tmp_path / "t.jsonl"
    with LogWriter(log) as writer:
        writer.append(record("a", 1.0))
    full = log.read_bytes()
    log.write_bytes(full + full[: len(full) // 2])  # a second record cut by a kill
    assert read_log(log).torn_lines == 1 and len(read_log(log).records) == 1
    with LogWriter(log) as writer:
        writer.append(record("b", 2.0))
    contents = read_log(log)
    assert [r.workload for r in contents.records] == ["a", "b"] and contents.torn_lines == 1


def test_foreign_files_and_versions_are_errors_naming_the_file(tmp_path):
    (tmp_path / "x.jsonl").write_text("hello\nworld\n")
    with pytest.raises(EdgepruneError, match=r"x\.jsonl: not an edgeprune tuning log"):
        read_log(tmp_path / "x.jsonl")
    (tmp_path / "v.jsonl").write_text(json.dumps({**record("a", 1.0).to_json(), "version": 99}) + "\n")
    with pytest.raises(EdgepruneError, match=r"v\.jsonl:1: .*version 99"):
        read_log(tmp_path / "v.jsonl")
    (tmp_path / "o.jsonl").write_text('{"some": "json"}\n')
    with pytest.raises(EdgepruneError, match=r"o\.jsonl:1"):
        read_log(tmp_path / "o.jsonl")
    with pytest.raises(EdgepruneError, match=r"missing\.jsonl: no such tuning log"):
        read_log(tmp_path / "missing.jsonl")


WRITER = """
import sys
from edgeprune.compiler.tuner.log import LogWriter, TuneRecord
big = {f"knob{i}": "x" * 200 for i in range(40)}  # ~10 kB lines: a kill can land mid-write
with LogWriter(sys.argv[1]) as w:
    for i in range(10**6):
        w.append(TuneRecord(f"wl{i}", "r", {"kind": "llvm"}, "local", {**big, "i": i}, {"median_ms": 1.0, "runs": 1}))
        if i == 5:
            print("running", flush=True)
"""


def test_a_killed_writer_loses_no_complete_record(tmp_path):
    log = tmp_path / "t.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(log)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "running"
    time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    lines = log.read_bytes().split(b"\n")
    complete = [line for line in lines[:-1] if line]
    for line in complete:
        json.loads(line)  # every newline-terminated line is a whole record
    contents = read_log(log)
    assert len(contents.records) == len(complete) >= 6
    assert contents.torn_lines == (1 if lines[-1] else 0)


def test_garbage_between_records_is_an_error_not_a_torn_line(tmp_path):
    log = tmp_path / "g.jsonl"
    good = json.dumps(record("a", 1.0).to_json())
    log.write_text(f"{good}\nrm -rf /\n{good[:20]}\n{good}\n")
    with pytest.raises(EdgepruneError, match=r"g\.jsonl:2: not a tuning record"):
        read_log(log)
    log.write_text(f"{good}\n{good[:20]}\n{good}\n")  # a cut record mid-log (the writer went on after a kill)
    assert read_log(log).torn_lines == 1
