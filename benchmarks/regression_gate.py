"""The latency regression gate on a real model: a repeat run must pass, a 20% slowdown must fail.

    python benchmarks/regression_gate.py [--size 128] [--repeats 6] [--runs 100] [--number 5] [--threads 1]
                                         [--json benchmarks/results/regression_gate.json]

TopFormer-Tiny (seeded random weights) is compiled for this CPU at SIZExSIZE, and a second
time at SIZEx(1.25 SIZE) (a genuinely slower artifact of the same model; a width that stays a
multiple of 32, as the schedules' vector tiles expect). Everything goes
through ``edgeprune bench --history H --baseline REF --fail-above 1.05``, each run a fresh
process, as CI would run it:

1. repeat: the same artifact ``--repeats`` times, each run against ``last``: "no change" expected;
2. injected: a run recorded with this machine's timings of the artifact divided by 1.2 (a
   history where the code got 20% slower since), then the artifact against ``last``: "slower",
   exit 3 expected;
3. slower artifact: the wider artifact against a run of the normal one: "slower", exit 3;
4. interleaved: in one process, the artifact timed as two runs in alternating rounds (the
   same machine load on both), compared as is and with the second run's timings x1.2.

The gate assumes a quiet machine: the load average is recorded beside the results, and on a
loaded one the back-to-back runs of 1-3 differ by more than any threshold worth gating on,
while the interleaved runs of 4 still agree. Each timing of 1-3 averages ``--number`` calls.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from edgeprune import compiler
from edgeprune.base.fileio import write_json
from edgeprune.compiler.artifact import load_artifact
from edgeprune.device.compare import alternate
from edgeprune.device.history import History
from edgeprune.device.regression import compare
from edgeprune.device.spec import DeviceSpec
from edgeprune.device.stats import summarize
from edgeprune.pruning.checkpoint import ArchInfo, save_checkpoint
from edgeprune.pruning.models import build_model

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "regression_gate.json"
MODEL = "topformer-tiny"
FAIL_ABOVE = "1.05"


def bench(artifact: Path, history: Path, runs: int, number: int, threads: int, *extra: str) -> tuple[int, dict]:
    """``edgeprune bench`` in a fresh process; returns its exit code and its JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        result = subprocess.run(
            [sys.executable, "-m", "edgeprune", "bench", str(artifact), "--history", str(history), "--model", MODEL,
             "--runs", str(runs), "--number", str(number), "--warmup", "10", "--threads", str(threads),
             "--json", str(out), *extra],
            capture_output=True, text=True, env=dict(os.environ, PYTHONWARNINGS="ignore"),
        )
        if result.returncode not in (0, 3):
            raise SystemExit(f"edgeprune bench failed ({result.returncode}):\n{result.stderr}")
        return result.returncode, json.loads(out.read_text())


def row(case: str, code: int | None, obj: dict) -> dict:
    c = obj.get("comparison")
    return {"case": case, "exit_code": code, "run": obj.get("history_run"), "median_ms": obj["median_ms"],
            "baseline_median_ms": c["baseline_median_ms"] if c else None, "ratio": c["ratio"] if c else None,
            "p_value": c["p_value"] if c else None, "verdict": c["verdict"] if c else "(no baseline)"}


def interleaved(artifact: Path, threads: int, rounds: int = 50, runs: int = 2) -> tuple[list[float], list[float]]:
    """The artifact timed as two runs in alternating rounds (``device.compare.alternate``)."""
    loaded = load_artifact(artifact, num_threads=threads)
    x = np.zeros(loaded.inputs[0].shape, dtype=loaded.inputs[0].dtype)
    times = alternate({"first": loaded, "second": loaded}, x, rounds=rounds, runs=runs)
    return times["first"], times["second"]


def wider(size: int) -> int:
    """The slower artifact's width: 1.25x, a multiple of 32 when ``size`` is one."""
    return size * 5 // 4


def gate_rows(args: argparse.Namespace, work: Path) -> list[dict]:
    """Compile the two artifacts into ``work`` and run every case; one row per comparison."""
    torch.manual_seed(0)
    shape = [1, 3, args.size, args.size]
    arch = ArchInfo(model=MODEL, num_classes=150, input_shape=shape, mean=[0.0] * 3, std=[1.0] * 3)
    ckpt = save_checkpoint(work / "ckpt", build_model(MODEL).eval(), arch, {}, export=False)
    wide = wider(args.size)
    print(f"compiling {MODEL} at {args.size}x{args.size} and {args.size}x{wide} ...", flush=True)
    artifact = compiler.compile(ckpt, out=work / "art")
    slower_artifact = compiler.compile(ckpt, out=work / "art-wide", input_shape=[1, 3, args.size, wide])
    history = work / "history.sqlite"
    gate = ("--baseline", "last", "--fail-above", FAIL_ABOVE)
    rows = []

    for i in range(args.repeats):
        code, obj = bench(artifact, history, args.runs, args.number, args.threads, *gate)
        rows.append(row(f"repeat {i + 1}: same artifact vs last", code, obj))

    measured = DeviceSpec.parse("local").runner().measure(artifact, runs=args.runs, warmup=10, number=args.number,
                                           threads=args.threads)
    with History(history) as h:
        like = h.run(rows[-1]["run"])
        faster = summarize([t / 1.2 for t in measured.stats.timings_ms], measured.stats.first_ms / 1.2)
        injected = h.record(replace(like, id=None, stats=faster))
    code, obj = bench(artifact, history, args.runs, args.number, args.threads, *gate)
    rows.append(row(f"injected: vs run #{injected.id} = timings / 1.2", code, obj))

    code, base = bench(artifact, history, args.runs, args.number, args.threads)
    code, obj = bench(slower_artifact, history, args.runs, args.number, args.threads, "--baseline", f"run:{base['history_run']}",
                      "--fail-above", FAIL_ABOVE)
    rows.append(row(f"slower artifact ({args.size}x{wide}, 1.25x pixels) vs run #{base['history_run']}", code, obj))

    first, second = interleaved(artifact, args.threads)
    for case, current in (("interleaved: same artifact", second), ("interleaved: second run x1.2", [t * 1.2 for t in second])):
        c = compare(current, first, threshold=float(FAIL_ABOVE))
        rows.append({"case": case, "exit_code": None, "run": None, "median_ms": c.current_median_ms,
                     "baseline_median_ms": c.baseline_median_ms, "ratio": c.ratio, "p_value": c.p_value,
                     "verdict": c.verdict})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--number", type=int, default=5, help="calls averaged into each timing")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()

    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="regression-gate-"))
    try:
        rows = gate_rows(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    shape, wide = [1, 3, args.size, args.size], wider(args.size)
    load_after = os.getloadavg()
    print(f"\n{MODEL} {args.size}x{args.size}, {args.threads} thread(s), {args.runs} runs of {args.number} calls each, "
          f"load average {load_before[0]:.1f} -> {load_after[0]:.1f} on {os.cpu_count()} cores; "
          f"gate: Mann-Whitney U p < 0.01 and median ratio >= {FAIL_ABOVE}")
    print(f"{'case':<54} {'baseline ms':>11} {'median ms':>10} {'ratio':>7} {'p':>9} {'verdict':>13} {'exit':>5}")
    for r in rows:
        base_ms = f"{r['baseline_median_ms']:.3f}" if r["baseline_median_ms"] else "-"
        ratio = f"{r['ratio']:.3f}" if r["ratio"] else "-"
        p = f"{r['p_value']:.2g}" if r["p_value"] is not None else "-"
        code = "" if r["exit_code"] is None else str(r["exit_code"])
        print(f"{r['case']:<54} {base_ms:>11} {r['median_ms']:>10.3f} {ratio:>7} {p:>9} {r['verdict']:>13} {code:>5}")
    write_json(args.json, {
        "model": MODEL, "input": shape, "slower_input": [1, 3, args.size, wide], "threads": args.threads,
        "runs": args.runs, "number": args.number, "fail_above": float(FAIL_ABOVE), "alpha": 0.01,
        "load_average_1min": [load_before[0], load_after[0]],
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "rows": rows,
    })
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
