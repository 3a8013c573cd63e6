"""``edgeprune demo``: the whole product on embedded defaults, on this machine, in minutes.

train a TopFormer on the synthetic scenes -> prune it to a MACs target with the bi-level
method and slice it -> tune the pruned model's heaviest workloads with the genetic tuner ->
compile both for the host CPU (the pruned one with its tuning log) -> cross-compile the pruned model for an
Adreno 660 and check its OpenCL kernels on the local OpenCL device (PoCL) -> time both host
artifacts against ONNX Runtime and record them in a results history -> write an HTML report.

Every stage records its result in ``OUT/stages.json`` (atomically) once it is complete; running
the demo again with the same ``OUT`` skips the completed stages, so an interrupted demo resumes
where it stopped (training also resumes inside its stage, from its last saved iteration).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeprune.base.errors import EdgepruneError
from edgeprune.base.fileio import write_json

STATE_FILE = "stages.json"
STATE_VERSION = 1
ADRENO = "adreno660"
REPORT_FILE = "report.html"
TUNING_LOG = "tuning.jsonl"
HISTORY_FILE = "history.sqlite"


@dataclass
class DemoConfig:
    out: Path
    model: str = "topformer-tiny"
    train_iters: int = 400
    train_lr: float = 0.1
    batch_size: int = 8
    crop: tuple[int, int] = (128, 128)
    size: tuple[int, int] = (256, 256)
    prune_iters: int = 60
    tune_trials: int = 40
    tune_workloads: int = 3
    macs_fraction: float = 0.6
    val_images: int = 64
    bench_rounds: int = 6
    bench_runs: int = 5
    threads: int | None = None
    seed: int = 0


class StageLog:
    """Results of the completed stages, persisted after each one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.results: dict[str, Any] = {}
        if path.exists():
            try:
                state = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise EdgepruneError(f"{path}: unreadable demo state ({exc}); remove it to start over") from exc
            if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
                raise EdgepruneError(f"{path}: not a demo state file of version {STATE_VERSION}; remove it to start over")
            self.results = state["stages"]

    def run(self, index: int, total: int, name: str, what: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        if name in self.results:
            print(f"[{index}/{total}] {name}: done earlier, kept ({what})", flush=True)
            return self.results[name]
        print(f"[{index}/{total}] {name}: {what}", flush=True)
        started = time.monotonic()
        result = fn()
        result["seconds"] = round(time.monotonic() - started, 1)
        self.results[name] = result
        write_json(self.path, {"version": STATE_VERSION, "stages": self.results})
        print(f"[{index}/{total}] {name}: finished in {result['seconds']:.0f} s", flush=True)
        return result


def run_demo(cfg: DemoConfig) -> dict[str, Any]:
    """Run (or resume) every stage; returns the per-stage results, also in ``OUT/stages.json``."""
    cfg.out.mkdir(parents=True, exist_ok=True)
    log = StageLog(cfg.out / STATE_FILE)
    stages: list[tuple[str, str, Callable[[], dict[str, Any]]]] = [
        ("train", f"{cfg.model} on synthetic scenes, {cfg.train_iters} iterations", lambda: _train(cfg)),
        ("prune", f"bi-level pruning to {cfg.macs_fraction:.0%} of the MACs, then slicing", lambda: _prune(cfg)),
        ("tune", f"GA over the {cfg.tune_workloads} heaviest workloads of the pruned model, {cfg.tune_trials} trials",
         lambda: _tune(cfg)),
        ("compile", "both models for this CPU", lambda: _compile(cfg)),
        ("adreno", f"cross-compile the pruned model for {ADRENO}, check its kernels on PoCL", lambda: _adreno(cfg)),
        ("bench", "both models, edgeprune vs ONNX Runtime, alternating", lambda: _bench(cfg)),
        ("report", "results history and HTML report", lambda: _report(cfg, log.results)),
    ]
    for i, (name, what, fn) in enumerate(stages, 1):
        log.run(i, len(stages), name, what, fn)
    return log.results


def _train(cfg: DemoConfig) -> dict[str, Any]:
    from edgeprune.pruning.train import TrainConfig, train

    out = cfg.out / "trained"
    report = train(TrainConfig(
        model=cfg.model, data="synthetic", out=out, iters=cfg.train_iters, lr=cfg.train_lr, batch_size=cfg.batch_size,
        crop_size=cfg.crop, input_size=cfg.size, val_images=cfg.val_images, seed=cfg.seed,
        resume=(out / "last.pt").exists(),
    ))
    return {"checkpoint": str(out), "miou": report["miou"], "macs": report["macs"], "params": report["params"]}


def _prune(cfg: DemoConfig) -> dict[str, Any]:
    from edgeprune.pruning.prune import PruneConfig, prune

    trained = cfg.out / "trained"
    before = json.loads((trained / "report.json").read_text())
    out = cfg.out / "pruned"
    report = prune(PruneConfig(
        model="", data="synthetic", out=out, from_dir=trained, iters=cfg.prune_iters, batch_size=cfg.batch_size,
        target_gmacs=cfg.macs_fraction * before["macs"] / 1e9, crop_size=cfg.crop, input_size=cfg.size,
        val_images=cfg.val_images, seed=cfg.seed,
    ))
    return {"checkpoint": str(out), "miou": report["miou"], "macs": report["macs"], "params": report["params"],
            "target_error": report["target_error"]}


def _tune(cfg: DemoConfig) -> dict[str, Any]:
    from edgeprune.compiler.tuner.tune import TuneJob, tune_model
    from edgeprune.device.runners.kernels import TimingPlan

    log = cfg.out / TUNING_LOG
    report = tune_model(TuneJob(
        src=cfg.out / "pruned", log=log, trials=cfg.tune_trials, heaviest=cfg.tune_workloads, resume=log.exists(),
        seed=cfg.seed, plan=TimingPlan(repeat=3, min_repeat_ms=10, threads=cfg.threads), confirm_top=2, confirm_rounds=2,
    ))
    return {"log": str(log), "workloads": [
        {"workload": r.task.key, "default_ms": r.default_ms, "tuned_ms": r.best_ms, "trials": r.trials}
        for r in report.results
    ]}


def _compile(cfg: DemoConfig) -> dict[str, Any]:
    from edgeprune import compiler
    from edgeprune.compiler.targets import resolve_target
    from edgeprune.compiler.tuner.log import tuning_configs

    configs = tuning_configs(cfg.out / TUNING_LOG, resolve_target("host"), None)
    result = {}
    for name, tuned in (("trained", None), ("pruned", configs)):
        started = time.monotonic()
        art = compiler.compile(cfg.out / name, tuning_configs=tuned, out=cfg.out / f"{name}-host")
        result[name] = {"artifact": str(art), "seconds": round(time.monotonic() - started, 1), "tuned": len(tuned or {})}
    return result


def _adreno(cfg: DemoConfig) -> dict[str, Any]:
    from edgeprune import compiler
    from edgeprune.compiler.artifact import read_meta
    from edgeprune.device.opencl_check import check_artifact

    art = compiler.compile(cfg.out / "pruned", target=ADRENO, out=cfg.out / f"pruned-{ADRENO}")
    check = check_artifact(art)
    if not check.ok:
        bad = [r.to_json() for r in check.results if r.status != "ok"]
        raise EdgepruneError(f"{art}: {len(bad)} OpenCL kernel(s) failed the check on {check.device}: {bad[0]}")
    return {"artifact": str(art), "linker": read_meta(art).linker, "kernels": len(check.results),
            "check_device": check.device}


def _bench(cfg: DemoConfig) -> dict[str, Any]:
    import numpy as np

    from edgeprune import compiler
    from edgeprune.compiler.threads import default_num_threads, set_num_threads
    from edgeprune.device.compare import alternate, onnxruntime_engine
    from edgeprune.device.stats import summarize

    threads = cfg.threads or default_num_threads()
    set_num_threads(threads)
    engines = {}
    for name in ("trained", "pruned"):
        engines[f"{name}/edgeprune"] = compiler.load_artifact(cfg.out / f"{name}-host", num_threads=threads)
        engines[f"{name}/onnxruntime"] = onnxruntime_engine(cfg.out / name / "model.onnx", threads)
    x = np.random.default_rng(cfg.seed).standard_normal((1, 3, *cfg.size)).astype(np.float32)
    times = alternate(engines, x, cfg.bench_rounds, cfg.bench_runs)
    # The first timed run of each engine stands in for "first": every engine was warmed up.
    return {"threads": threads, "engines": {k: summarize(v, v[0]).to_json() for k, v in times.items()}}


def _report(cfg: DemoConfig, results: dict[str, Any]) -> dict[str, Any]:
    from edgeprune.device.history import History, run_for_artifact
    from edgeprune.device.stats import LatencyStats
    from edgeprune.report import ReportInputs, Table, write_report

    threads = results["bench"]["threads"]
    with History(cfg.out / HISTORY_FILE) as history:
        for name in ("trained", "pruned"):
            stats = results["bench"]["engines"][f"{name}/edgeprune"]
            stats = LatencyStats(**{**stats, "timings_ms": tuple(stats["timings_ms"])})
            history.record(run_for_artifact(cfg.out / f"{name}-host", stats, threads, model=f"{cfg.model}-{name}"))
    columns, rows = summary_rows(results)
    adreno = results["adreno"]
    note = (f"Median of {results['bench']['engines']['trained/edgeprune']['runs']} alternating runs each, {threads} "
            f"threads. {ADRENO}: {adreno['kernels']} OpenCL kernels passed the check on {adreno['check_device']}.")
    out = write_report(cfg.out / REPORT_FILE, ReportInputs(
        history=cfg.out / HISTORY_FILE, checkpoint=cfg.out / "pruned", unpruned=cfg.out / "trained",
        artifact=cfg.out / "pruned-host", threads=threads, tables=[Table("Before and after pruning", columns, rows, note)],
    ))
    return {"report": str(out), "history": str(cfg.out / HISTORY_FILE)}


def summary_rows(results: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """MACs, params, mIoU, latency and FPS before and after pruning, beside ONNX Runtime."""
    columns = ["model", "GMACs", "params (M)", "mIoU (%)", "edgeprune ms", "FPS", "ONNX Runtime ms", "vs ORT"]
    engines = results["bench"]["engines"]
    rows = []
    for stage, key, label in (("train", "trained", "unpruned"), ("prune", "pruned", "pruned")):
        done = results[stage]
        ours, ort = engines[f"{key}/edgeprune"], engines[f"{key}/onnxruntime"]
        rows.append([label, round(done["macs"] / 1e9, 3), round(done["params"] / 1e6, 2), round(100 * done["miou"], 1),
                     round(ours["median_ms"], 2), round(ours["fps"], 1), round(ort["median_ms"], 2),
                     f"{ours['median_ms'] / ort['median_ms']:.2f}x"])
    return columns, rows


def summary_table(results: dict[str, Any]) -> str:
    """The before/after rows as a fixed-width table, and where the report is."""
    columns, rows = summary_rows(results)
    widths = [max(len(str(c)), *(len(str(r[i])) for r in rows)) for i, c in enumerate(columns)]
    def line(cells: list[Any]) -> str:
        return "  ".join(str(v).ljust(w) if i == 0 else str(v).rjust(w) for i, (v, w) in enumerate(zip(cells, widths)))

    lines = [line(columns), *(line(row) for row in rows)]
    lines.append(f"report: {results['report']['report']}")
    return "\n".join(lines)
