"""The latency regression gate under load: A/B (``bench NEW --against OLD``) against stored baselines.

    python benchmarks/regression_gate.py [--size 128] [--trials 20] [--slowdown 1.10] [--no-burner]
                                         [--json benchmarks/results/regression_gate.json]

TopFormer-Tiny (seeded random weights) is compiled for this CPU at SIZExSIZE twice from the
same checkpoint (OLD and SAME: a rebuild of one commit), and once more with one kernel given a
deliberately worse schedule (SLOW). The worse schedule is calibrated on this machine: each
one-knob change of the default configs of the model's three most expensive workloads is timed
as a kernel alone, the change whose predicted whole-model ratio is nearest ``--slowdown`` is
compiled and its ratio confirmed by an A/B in this process (the next candidate is tried when it
misses by more than 0.02), so SLOW is ``--slowdown`` slower as a model through that one kernel.

A process burning CPU is pinned to the second core and every ``edgeprune bench`` runs in a
fresh process pinned to the first, with one thread, as a CI job beside another job would.
Each trial runs, in this order:

1. ``bench SAME --against OLD --fail-above 1.05``: should pass (goal: flagged in 0 trials);
2. ``bench SLOW --against OLD --fail-above 1.05``: should fail, exit 3, and name the slowed
   kernel first among the changed ones (goal: at least TRIALS - 1 trials);
3. ``bench OLD --baseline last --fail-above 1.05 --runs R``: the stored-baseline gate on the
   same artifact as the previous trial recorded it (R: as many timed runs per artifact as an
   A/B times); its false alarms are the rate A/B is measured against.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgeprune import compiler
from edgeprune.base.fileio import write_json
from edgeprune.compiler.tuner.measure import Measurer
from edgeprune.compiler.tuner.tasks import Task, model_tasks
from edgeprune.device.ab import RoundPlan, measure_ab
from edgeprune.device.profile import profile_artifact
from edgeprune.device.runners.kernels import TimingPlan
from edgeprune.device.spec import DeviceSpec
from edgeprune.pruning.checkpoint import ArchInfo, save_checkpoint
from edgeprune.pruning.models import build_model

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "regression_gate.json"
MODEL = "topformer-tiny"
FAIL_ABOVE = "1.05"
BENCH_CORE, BURNER_CORE = 0, 1
TOP_WORKLOADS = 3
CALIBRATION_TOLERANCE = 0.02
MAX_CALIBRATION_BUILDS = 4


@dataclass(frozen=True)
class Candidate:
    task: Task
    config: dict[str, Any]
    change: str  # "knob old->new"
    predicted_ratio: float


def start_burner() -> subprocess.Popen | None:
    """A process spinning on the second core, or None on a one-core machine."""
    if len(os.sched_getaffinity(0)) < 2:
        return None
    code = f"import os\nos.sched_setaffinity(0, {{{BURNER_CORE}}})\nwhile True:\n    pass\n"
    return subprocess.Popen([sys.executable, "-c", code])


def bench(new: Path, *extra: str) -> tuple[int, dict]:
    """``edgeprune bench NEW ...`` in a fresh process on the first core; its exit code and JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        result = subprocess.run(
            [sys.executable, "-m", "edgeprune", "bench", str(new), "--threads", "1", "--json", str(out), *extra],
            capture_output=True, text=True, env=dict(os.environ, PYTHONWARNINGS="ignore"),
            preexec_fn=lambda: os.sched_setaffinity(0, {BENCH_CORE}),
        )
        if result.returncode not in (0, 3):
            raise SystemExit(f"edgeprune bench failed ({result.returncode}):\n{result.stderr}")
        return result.returncode, json.loads(out.read_text())


def one_knob_changes(task: Task, config: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """Every valid config that differs from ``config`` in one knob."""
    space = task.space
    gene = space.gene(config)
    changes = []
    for i, values in enumerate(space.values):
        for j in range(len(values)):
            changed = gene[:i] + (j,) + gene[i + 1:]
            if j != gene[i] and space.invalid(changed) is None:
                changes.append((space.config(changed), f"{space.knobs[i]} {values[gene[i]]}->{values[j]}"))
    return changes


def candidates(ckpt: Path, old: Path, slowdown: float) -> tuple[list[Candidate], float]:
    """One-knob changes of the costliest workloads, nearest to ``slowdown`` first; and OLD's model ms."""
    meta = json.loads((old / "meta.json").read_text())
    funcs = {s["func"]: s for s in meta["schedules"]}
    profile = profile_artifact(old, repeat=30, threads=1)
    per_workload: dict[str, float] = {}
    for kernel in profile.kernels:
        workload = funcs.get(kernel.name, {}).get("workload")
        if workload:
            per_workload[workload] = per_workload.get(workload, 0.0) + kernel.ms
    tasks = {t.key: t for t in model_tasks(ckpt, meta["target"])}
    top = sorted((w for w in per_workload if w in tasks), key=lambda w: -per_workload[w])[:TOP_WORKLOADS]
    configs = {s["workload"]: s["config"] for s in meta["schedules"]}
    jobs = []  # (task, config, change); each workload's default first
    for workload in top:
        jobs.append((tasks[workload], configs[workload], "default"))
        jobs += [(tasks[workload], c, what) for c, what in one_knob_changes(tasks[workload], configs[workload])]
    measurer = Measurer(DeviceSpec.parse("local"), TimingPlan(repeat=5, threads=1, cold=True), meta["target"],
                        builders=2, build_timeout_s=300)
    try:
        rounds = measurer.measure_rounds([(task.kernel, config) for task, config, _ in jobs], 3)
    finally:
        measurer.close()
    alone = [float(np.median([r[i].latency["median_ms"] for r in rounds if r[i].latency] or [np.nan]))
             for i in range(len(jobs))]
    model_ms = profile.total_ms
    defaults = {task.key: ms for (task, _, what), ms in zip(jobs, alone) if what == "default"}
    found = [Candidate(task, config, what, 1 + task.calls * (ms - defaults[task.key]) / model_ms)
             for (task, config, what), ms in zip(jobs, alone) if what != "default" and np.isfinite(ms)]
    found.sort(key=lambda c: abs(c.predicted_ratio - slowdown))
    return found, model_ms


def calibrate(ckpt: Path, old: Path, work: Path, slowdown: float) -> tuple[Path, Candidate, float, list[dict]]:
    """Compile SLOW: the first candidate whose measured A/B ratio is within the tolerance of ``slowdown``."""
    found, model_ms = candidates(ckpt, old, slowdown)
    print(f"calibrating: {len(found)} one-knob changes timed alone (OLD's kernels sum to {model_ms:.3f} ms)", flush=True)
    tried = []
    os.sched_setaffinity(0, {BENCH_CORE})
    try:
        for n, cand in enumerate(found[:MAX_CALIBRATION_BUILDS]):
            slow = compiler.compile(ckpt, out=work / f"slow{n}", tuning_configs={cand.task.key: cand.config})
            result = measure_ab(DeviceSpec.parse("local").runner(), slow, old, float(FAIL_ABOVE), RoundPlan(rounds=30),
                                threads=1)
            ratio = result.comparison.ratio
            tried.append({"workload": cand.task.key, "label": cand.task.label, "change": cand.change,
                          "predicted_ratio": cand.predicted_ratio, "measured_ratio": ratio})
            print(f"  {cand.task.label} {cand.change}: predicted {cand.predicted_ratio:.3f}x, measured {ratio:.3f}x", flush=True)
            if abs(ratio - slowdown) <= CALIBRATION_TOLERANCE:
                break
    finally:
        os.sched_setaffinity(0, range(os.cpu_count() or 1))
    best = min(range(len(tried)), key=lambda i: abs(tried[i]["measured_ratio"] - slowdown))
    return work / f"slow{best}", found[best], tried[best]["measured_ratio"], tried


def ab_row(code: int, obj: dict) -> dict:
    c = obj["comparison"]
    changed = obj["kernels"]["changed"] if obj.get("kernels") else []
    return {"exit_code": code, "flagged": code == 3, "ratio": c["ratio"], "ci": [c["ci_low"], c["ci_high"]],
            "p_value": c["p_value"], "verdict": c["verdict"], "new_median_ms": c["new_median_ms"],
            "old_median_ms": c["old_median_ms"], "kernels_changed": changed}


def stored_row(code: int, obj: dict) -> dict:
    c = obj.get("comparison")
    return {"exit_code": code, "flagged": code == 3, "median_ms": obj["median_ms"],
            "ratio": c["ratio"] if c else None, "p_value": c["p_value"] if c else None,
            "verdict": c["verdict"] if c else "(no baseline)"}


def run_trials(args: argparse.Namespace, old: Path, same: Path, slow: Path, slowed_key: str, work: Path) -> dict:
    ab_history, stored_history = work / "ab.sqlite", work / "stored.sqlite"
    gate = ("--fail-above", FAIL_ABOVE)
    stored = ("--history", str(stored_history), "--model", MODEL, "--runs", str(args.stored_runs), "--baseline", "last")
    rows: dict[str, list[dict]] = {"same": [], "slow": [], "stored": []}
    bench(old, *stored)  # the stored gate's first baseline
    for trial in range(1, args.trials + 1):
        code, obj = bench(same, "--against", str(old), "--history", str(ab_history), "--model", MODEL, *gate)
        rows["same"].append(ab_row(code, obj))
        code, obj = bench(slow, "--against", str(old), "--history", str(ab_history), "--model", MODEL, *gate)
        rows["slow"].append(ab_row(code, obj) | {"named_first": bool(obj["kernels"]["changed"])
                                                 and obj["kernels"]["changed"][0] == slowed_key})
        code, obj = bench(old, *stored, *gate)
        rows["stored"].append(stored_row(code, obj))
        s, w, b = rows["same"][-1], rows["slow"][-1], rows["stored"][-1]
        print(f"trial {trial:>2}: same {s['ratio']:.3f}x [{s['ci'][0]:.3f}, {s['ci'][1]:.3f}] {s['verdict']:<9} | "
              f"slow {w['ratio']:.3f}x [{w['ci'][0]:.3f}, {w['ci'][1]:.3f}] {w['verdict']:<9} "
              f"kernel {'named' if w['named_first'] else 'MISSED'} | stored {b['ratio']:.3f}x {b['verdict']}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--slowdown", type=float, default=1.10, help="SLOW's whole-model ratio to calibrate to")
    parser.add_argument("--stored-runs", type=int, default=80,
                        help="timed runs of the stored-baseline gate (an A/B of 40 rounds times 80 of each)")
    parser.add_argument("--no-burner", action="store_true", help="leave the second core alone")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()

    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="regression-gate-"))
    burner = None
    try:
        torch.manual_seed(0)
        shape = [1, 3, args.size, args.size]
        arch = ArchInfo(model=MODEL, num_classes=150, input_shape=shape, mean=[0.0] * 3, std=[1.0] * 3)
        ckpt = save_checkpoint(work / "ckpt", build_model(MODEL).eval(), arch, {}, export=False)
        print(f"compiling {MODEL} at {args.size}x{args.size} twice (OLD, SAME) ...", flush=True)
        old = compiler.compile(ckpt, out=work / "old")
        same = compiler.compile(ckpt, out=work / "same")
        burner = None if args.no_burner else start_burner()
        slow, cand, measured, tried = calibrate(ckpt, old, work, args.slowdown)
        print(f"SLOW: {cand.task.label} with {cand.change} ({measured:.3f}x as a model)\n", flush=True)
        rows = run_trials(args, old, same, slow, cand.task.key, work)
    finally:
        if burner is not None:
            burner.kill()
        shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()

    n = args.trials
    same_flagged = sum(r["flagged"] for r in rows["same"])
    slow_flagged = sum(r["flagged"] for r in rows["slow"])
    slow_named = sum(r["flagged"] and r["named_first"] for r in rows["slow"])
    stored_flagged = sum(r["flagged"] for r in rows["stored"])
    stored_faster = sum(r["verdict"] == "faster" for r in rows["stored"])
    false_kernels = sum(len(r["kernels_changed"]) for r in rows["same"])
    median_ci = {k: float(np.median([r["ci"][1] - r["ci"][0] for r in rows[k]])) for k in ("same", "slow")}
    stored_ratios = [r["ratio"] for r in rows["stored"]]
    print(f"\n{MODEL} {args.size}x{args.size}, 1 thread on core {BENCH_CORE}, "
          f"{'no burner' if args.no_burner or burner is None else f'a CPU burner on core {BURNER_CORE}'}, "
          f"load average {load_before[0]:.1f} -> {load_after[0]:.1f} on {os.cpu_count()} cores; --fail-above {FAIL_ABOVE}")
    print(f"{'A/B, same artifact:':<28} flagged {same_flagged:>2}/{n} (goal 0); median 99% CI width "
          f"{median_ci['same']:.3f}; kernels wrongly named changed: {false_kernels}")
    print(f"{f'A/B, one kernel ({measured:.2f}x):':<28} flagged {slow_flagged:>2}/{n}, that kernel named first in "
          f"{slow_named}/{n} (goal >= {n - 1}); median 99% CI width {median_ci['slow']:.3f}")
    print(f"{'stored baseline (last):':<28} flagged {stored_flagged:>2}/{n} on the same artifact, called faster in "
          f"{stored_faster}/{n} (ratios {min(stored_ratios):.3f}-{max(stored_ratios):.3f}x)")
    write_json(args.json, {
        "model": MODEL, "input": [1, 3, args.size, args.size], "threads": 1, "trials": n,
        "fail_above": float(FAIL_ABOVE), "burner": not args.no_burner and burner is not None,
        "load_average_1min": [load_before[0], load_after[0]],
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "slowed": {"workload": cand.task.key, "label": cand.task.label, "change": cand.change,
                   "measured_ratio": measured, "calibration": tried},
        "goals": {"same_flagged_max": 0, "slow_flagged_and_named_min": n - 1},
        "summary": {"same_flagged": same_flagged, "slow_flagged": slow_flagged, "slow_named_first": slow_named,
                    "stored_false_alarms": stored_flagged,
                    "stored_called_faster": stored_faster, "same_kernels_wrongly_changed": false_kernels,
                    "median_ci_width": median_ci},
        "rows": rows,
    })
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
