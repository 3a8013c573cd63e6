"""``edgeprune tune`` (interrupt, refuse, resume) and ``edgeprune compile --tuning-log``."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter

import numpy as np
import pytest

from edgeprune.base.errors import EdgepruneError
from edgeprune.cli import main
from edgeprune.compiler.targets import resolve_target
from edgeprune.compiler.tuner.log import best_records, exclusive, read_log

FAST = ("--builders", "1", "--repeat", "2", "--min-repeat-ms", "2", "--timeout", "60", "--confirm-top", "1", "--confirm-rounds", "2")


def interrupt_when(path, lines: int) -> threading.Thread:
    """Send this process SIGINT (a Ctrl-C) once ``path`` holds ``lines`` lines."""
    def watch() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if path.exists() and path.read_bytes().count(b"\n") >= lines:
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_tune_interrupt_resume_and_compile_with_the_log(tiny_onnx, tmp_path, capsys):
    log = tmp_path / "tune.jsonl"
    argv = ["tune", str(tiny_onnx), "--log", str(log), *FAST]
    watcher = interrupt_when(log, 2)
    assert main([*argv, "--trials", "8"]) == 130
    watcher.join()
    out = capsys.readouterr().out
    assert "2 workloads to tune" in out and "rerun with --resume" in out
    interrupted = read_log(log).records
    assert 2 <= len(interrupted) < 8

    assert main([*argv, "--trials", "8"]) == 2
    assert "pass --resume" in capsys.readouterr().err

    assert main([*argv, "--trials", "8", "--resume"]) == 0
    out = capsys.readouterr().out
    assert "default ms" in out and "tuned ms" in out and "GFLOP/s" in out
    records = read_log(log).records
    trials = [r for r in records if r.strategy != "confirm"]
    assert len(trials) == 8 and records[: len(interrupted)] == interrupted
    assert Counter(r.workload for r in trials).keys() == {r.workload for r in interrupted}
    seen = [(r.workload, json.dumps(r.knobs, sort_keys=True)) for r in trials]
    assert len(seen) == len(set(seen))  # nothing measured twice
    searched = [w for w, n in Counter(r.workload for r in trials).items() if n > 1]
    assert len(records) - len(trials) == len(searched) * 2 * 2  # per searched workload: default + best, 2 rounds

    best = best_records(records, resolve_target("host"))
    art = tmp_path / "art"
    assert main(["compile", str(tiny_onnx), "--tuning-log", str(log), "--device", "local", "--out", str(art)]) == 0
    assert f"2 tuned from {log}" in capsys.readouterr().out
    meta = json.loads((art / "meta.json").read_text())
    assert meta["tuned"] is True
    convs = [s for s in meta["schedules"] if s["workload"] in best]
    assert len(convs) == 2 and all(s["tuned"] and s["config"] == best[s["workload"]].knobs for s in convs)

    import onnxruntime as ort

    from edgeprune import compiler

    x = np.random.default_rng(3).standard_normal((1, 32, 16, 24)).astype(np.float32)
    expected = ort.InferenceSession(str(tiny_onnx), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    np.testing.assert_allclose(compiler.load_artifact(art)(x), expected, rtol=1e-4, atol=1e-4)


def test_compile_falls_back_to_defaults_for_a_log_of_another_device(tiny_onnx, tmp_path, capsys):
    log = tmp_path / "other.jsonl"
    log.write_text(json.dumps({
        "version": 1, "workload": "conv2d_1x1(x)", "rule": "conv1x1", "target": {"kind": "llvm"},
        "device_key": "pixel7", "knobs": {}, "latency": {"median_ms": 1.0, "runs": 1}, "time": "",
    }) + "\n")
    art = tmp_path / "art"
    assert main(["compile", str(tiny_onnx), "--tuning-log", str(log), "--out", str(art)]) == 0
    assert "no record for target 'host'" in capsys.readouterr().out
    assert json.loads((art / "meta.json").read_text())["tuned"] is False


def test_bad_arguments_are_one_line_errors(tiny_onnx, tmp_path):
    (tmp_path / "junk.jsonl").write_text("junk\n")
    with pytest.raises(EdgepruneError, match=r"junk\.jsonl: not an edgeprune tuning log"):
        main_raising(["compile", str(tiny_onnx), "--tuning-log", str(tmp_path / "junk.jsonl"), "--out", str(tmp_path / "a")])
    with pytest.raises(EdgepruneError, match="rpc://HOST:PORT/KEY"):
        main_raising(["tune", str(tiny_onnx), "--trials", "4", "--log", str(tmp_path / "l.jsonl"), "--device", "phone"])
    with pytest.raises(EdgepruneError, match="matches none of the model's workloads"):
        main_raising(["tune", str(tiny_onnx), "--trials", "4", "--log", str(tmp_path / "l.jsonl"), "--workloads", "softmax"])
    assert not (tmp_path / "l.jsonl").exists() and not (tmp_path / "a").exists()


def main_raising(argv: list[str]) -> int:
    """Run a verb as ``edgeprune.cli.main`` does, but let its ``EdgepruneError`` through."""
    from edgeprune.cli import build_parser

    args = build_parser().parse_args(argv)
    return args.run(args)


def test_a_second_tune_on_a_log_in_use_is_refused_before_measuring(tiny_onnx, tmp_path):
    log = tmp_path / "l.jsonl"
    with exclusive(log):  # as another `edgeprune tune --resume` on the same log would
        with pytest.raises(EdgepruneError, match="another edgeprune tune is writing this log"):
            main_raising(["tune", str(tiny_onnx), "--trials", "4", "--log", str(log), "--resume"])
    assert not log.exists()
