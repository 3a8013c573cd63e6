"""Genetic algorithm vs random search (vs the default, vs TVM MetaSchedule) per conv workload.

    python benchmarks/tuner_ga_vs_random.py [--models topformer-tiny,deeplabv3plus-mbv2]
        [--workloads 3] [--budgets 16,32,64] [--ms-trials 16] [--seed 0]
        [--json benchmarks/results/tuner_ga_vs_random.json] [--plot benchmarks/results/tuner_ga_vs_random.png]

For the heaviest conv workloads of each model (calls x FLOPs; seeded random weights, the
input sizes of ``compiler_vs_ort.py``), the GA and random search each get the largest budget
through the same tuner machinery ``edgeprune tune`` uses (parallel builders, one runner, a
tuning log per run, concatenated into ``benchmarks/results/tuner_<model>.jsonl``). Both start
from the rule's default, and neither's path depends on the budget, so the best of the first
B trials is the result at budget B. MetaSchedule (``tune_tir`` on the same PrimFunc, random
cost model since xgboost is not installed, a build function that skips the tensor-intrinsic
import) gets ``--ms-trials`` trials where it runs.

Tuning-time latencies come from minutes apart on a shared, noisy machine, so the figures
compared are re-measured at the end side by side: every workload's default, GA best and
random best at each budget, and MetaSchedule's best, built and timed alternately in rounds;
the reported latency is the median over the rounds of each round's fastest repeat (the
statistic the tuner ranks by: on a shared machine interference only adds time). The tuning cost (seconds per trial with
1 and with all parallel builders) is measured on the first workload.
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compiler_vs_ort import FULL_SIZES, save_model  # noqa: E402

from edgeprune.base.fileio import write_json  # noqa: E402
from edgeprune.base.timing import alternate_timers, medians  # noqa: E402
from edgeprune.base.workers import JobFailure, WorkerPool  # noqa: E402
from edgeprune.compiler.target import host_cores, make_target  # noqa: E402
from edgeprune.compiler.targets import resolve_target
from edgeprune.compiler.tuner.measure import Measurer, build_kernel  # noqa: E402
from edgeprune.compiler.tuner.session import TuneSession  # noqa: E402
from edgeprune.compiler.tuner.tasks import Task, model_tasks  # noqa: E402
from edgeprune.device.runners.kernels import TimingPlan, time_library  # noqa: E402
from edgeprune.device.spec import DeviceSpec  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
CONV_OPS = ("conv2d", "conv2d_1x1", "depthwise_conv2d")
PLAN = TimingPlan(repeat=3, min_repeat_ms=10)
FINAL_PLAN = TimingPlan(repeat=3, min_repeat_ms=20)


def ms_build(mod, target, _params):
    """MetaSchedule's default build minus ``import tvm.s_tir.tensor_intrin`` (~20 s per worker)."""
    from tvm.driver import build as tvm_build
    from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock

    return tvm_build(RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(mod), target=target)


def import_metaschedule() -> None:
    """Runs once in the MetaSchedule worker: TuneContext imports the tensor intrinsics (slow)."""
    import tvm.s_tir.tensor_intrin  # noqa: F401


def metaschedule(task: Task, target: dict, trials: int, lib_path: Path, seed: int) -> dict:
    """Tune the task's PrimFunc with MetaSchedule; export its best to ``lib_path``."""
    import cloudpickle
    import tvm
    from tvm.s_tir import meta_schedule as ms

    # MetaSchedule ships f_build to its own workers; this script is no importable module.
    cloudpickle.register_pickle_by_value(sys.modules[ms_build.__module__])
    func = tvm.ir.load_json(task.kernel.func_json).with_attr("global_symbol", "main")
    mod = tvm.IRModule({"main": func})
    tvm_target = make_target(target)
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="edgeprune-ms-") as work_dir:
            database = ms.tune_tir(
                mod, tvm_target, work_dir, max_trials_global=trials, num_trials_per_iter=min(trials, 16),
                builder=ms.builder.LocalBuilder(f_build=ms_build, max_workers=host_cores()),
                cost_model="random", num_tuning_cores=host_cores(), seed=seed,
            )
            sch = ms.tir_integration.compile_tir(database, mod, tvm_target)
            if sch is None:
                return {"error": "no valid schedule found", "seconds": round(time.perf_counter() - started, 1)}
            tvm.compile(sch.mod, tvm_target).export_library(str(lib_path))
            measured = [float(np.mean([float(s) for s in r.run_secs])) * 1e3
                        for r in database.get_all_tuning_records() if r.run_secs]
    except Exception as exc:  # noqa: BLE001 - report why MetaSchedule did not run here
        text = str(exc).strip().splitlines()
        return {"error": text[-1] if text else type(exc).__name__, "seconds": round(time.perf_counter() - started, 1)}
    return {"trials": len(measured), "tuning_best_ms": round(min(measured), 4) if measured else None,
            "seconds": round(time.perf_counter() - started, 1)}


def tune_one(task: Task, target: dict, measurer: Measurer, strategy: str, budget: int, seed: int, log: Path) -> dict:
    started = time.perf_counter()
    # No confirmation phase: the final side-by-side below re-times every strategy's picks alike.
    report = TuneSession([task], target, measurer, log, strategy=strategy, seed=seed, confirm_top=0).run(budget)
    result = report.results[0]
    seconds = time.perf_counter() - started
    curve, best = [], math.inf
    for cost in result.history:
        best = min(best, cost)
        curve.append(best)
    return {"history_ms": result.history, "best_so_far_ms": curve, "seconds": seconds, "measured": result.measured,
            "failures": result.failures}


def best_config_at(task: Task, log: Path, budget: int) -> dict:
    """The config of the fastest of the first ``budget`` records of a run's log."""
    from edgeprune.compiler.tuner.log import read_log

    records = [r for r in read_log(log).records if r.workload == task.key][:budget]
    return min(records, key=lambda r: r.cost).knobs


def side_by_side(libs: dict[str, Path], args, rounds: int) -> dict[str, float]:
    """Per library, the median over ``rounds`` alternating rounds of each round's fastest repeat (ms)."""
    # min_ms: the statistic the tuner ranks by
    timers = {name: (lambda path=path: time_library(str(path), args, FINAL_PLAN)["min_ms"]) for name, path in libs.items()}
    return medians(alternate_timers(timers, rounds))


def tuning_cost(task: Task, target: dict) -> dict:
    """Seconds per trial for one batch of random candidates, with 1 and with all builders."""
    import random

    space = task.space
    rng = random.Random(1)
    genes = space.valid_genes()
    rng.shuffle(genes)
    out = {}
    for builders in sorted({1, host_cores()}):
        configs = [space.config(g) for g in genes[: 4 * host_cores()]]
        measurer = Measurer(DeviceSpec.parse("local"), PLAN, target, builders, 120, 120)
        try:
            measurer.measure([(task.kernel, configs[0])])  # workers warm
            started = time.perf_counter()
            measurer.measure([(task.kernel, c) for c in configs])
            out[f"builders_{builders}_s_per_trial"] = round((time.perf_counter() - started) / len(configs), 3)
        finally:
            measurer.close()
    return out


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(3, len(rows))
    lines = math.ceil(len(rows) / cols)
    fig, axes = plt.subplots(lines, cols, figsize=(5 * cols, 3.6 * lines), squeeze=False)
    for ax, row in zip(axes.flat, rows):
        for name, color in (("ga", "tab:blue"), ("random", "tab:orange")):
            curve = row["runs"][name]["best_so_far_ms"]
            ax.plot(range(1, len(curve) + 1), curve, color=color, label=name)
        ax.axhline(row["runs"]["ga"]["history_ms"][0], color="gray", ls="--", label="default")
        ms_best = row["metaschedule"].get("tuning_best_ms")
        if ms_best:
            ax.axhline(ms_best, color="tab:green", ls=":", label=f"MetaSchedule ({row['metaschedule']['trials']} trials)")
        ax.set_title(f"{row['model']}: {row['label']}", fontsize=8)
        ax.set_xlabel("trials")
        ax.set_ylabel("best latency so far (ms)")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(rows):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="topformer-tiny,deeplabv3plus-mbv2")
    parser.add_argument("--workloads", type=int, default=3, help="heaviest conv workloads per model (default 3)")
    parser.add_argument("--budgets", default="16,32,64", help="trial budgets compared (default 16,32,64)")
    parser.add_argument("--ms-trials", type=int, default=16, help="MetaSchedule trials per workload (0: skip)")
    parser.add_argument("--ms-timeout", type=float, default=600, help="seconds MetaSchedule may take per workload")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the final side-by-side timing")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=RESULTS / "tuner_ga_vs_random.json")
    parser.add_argument("--plot", type=Path, default=RESULTS / "tuner_ga_vs_random.png")
    args = parser.parse_args()
    budgets = sorted({int(b) for b in args.budgets.split(",")})
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in FULL_SIZES]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(FULL_SIZES)}")
    target = resolve_target("host")
    from edgeprune.compiler.threads import set_num_threads

    set_num_threads(host_cores())
    rows, cost, first_task = [], {}, None
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edgeprune-tuner-bench-") as tmp:
        work = Path(tmp)
        measurer = Measurer(DeviceSpec.parse("local"), PLAN, target, host_cores(), 120, 120)
        # MetaSchedule runs in a worker of its own, under a timeout: it may not finish here.
        ms_pool = WorkerPool(1, warmup=import_metaschedule) if args.ms_trials > 0 else None
        try:
            for name in names:
                ckpt = save_model(name, FULL_SIZES[name], work / f"{name}-ckpt")
                tasks = [t for t in model_tasks(ckpt, target) if t.workload.op in CONV_OPS]
                tasks.sort(key=lambda t: -(t.flops or 0) * t.calls)
                combined = RESULTS / f"tuner_{name}.jsonl"
                combined.unlink(missing_ok=True)
                for i, task in enumerate(tasks[: args.workloads]):
                    first_task = first_task or task
                    row = {"model": name, "workload": task.key, "label": task.label, "calls": task.calls,
                           "gflop": round((task.flops or 0) / 1e9, 4), "runs": {}}
                    logs = {}
                    for strategy in ("ga", "random"):
                        logs[strategy] = work / f"{name}-{i}-{strategy}.jsonl"
                        row["runs"][strategy] = tune_one(task, target, measurer, strategy, max(budgets), args.seed, logs[strategy])
                        with open(combined, "ab") as out:
                            out.write(logs[strategy].read_bytes())
                    libs = {"default": work / f"{name}-{i}-default.so"}
                    build_kernel(task.kernel, task.space.config(task.space.default_gene()), target, str(libs["default"]))
                    for strategy in ("ga", "random"):
                        for b in budgets:
                            lib = libs[f"{strategy}@{b}"] = work / f"{name}-{i}-{strategy}-{b}.so"
                            build_kernel(task.kernel, best_config_at(task, logs[strategy], b), target, str(lib))
                    row["metaschedule"] = {"skipped": "--ms-trials 0"}
                    if ms_pool is not None:
                        ms_lib = work / f"{name}-{i}-ms.so"
                        job = (task, target, args.ms_trials, ms_lib, args.seed)
                        try:
                            found = ms_pool.map(metaschedule, [job], timeout_s=args.ms_timeout)[0]
                        except RuntimeError as exc:  # its worker did not start in time
                            found = JobFailure(str(exc))
                        row["metaschedule"] = {"error": found.error} if isinstance(found, JobFailure) else found
                        if ms_lib.exists():
                            libs["metaschedule"] = ms_lib
                    final = side_by_side(libs, task.kernel.args, args.rounds)
                    row["side_by_side_ms"] = {k: round(v, 4) for k, v in final.items()}
                    row["side_by_side_gflops"] = {k: round((task.flops or 0) / v / 1e6, 1) for k, v in final.items()}
                    rows.append(row)
                    print(f"{name} {row['label']}: " + ", ".join(f"{k} {v:.3f}" for k, v in final.items()), flush=True)
        finally:
            measurer.close()
            if ms_pool is not None:
                ms_pool.close()
        if first_task is not None:
            cost = tuning_cost(first_task, target)
    print_table(rows, budgets)
    args.plot.parent.mkdir(parents=True, exist_ok=True)
    if rows:
        plot(rows, args.plot)
    import tvm

    summary = {}
    for b in budgets:
        ratios = [r["side_by_side_ms"][f"random@{b}"] / r["side_by_side_ms"][f"ga@{b}"] for r in rows]
        summary[f"ga_vs_random_speedup_at_{b}"] = round(statistics.geometric_mean(ratios), 3) if ratios else None
        summary[f"ga_wins_at_{b}"] = sum(x > 1 for x in ratios)
    ga_top = [r["side_by_side_ms"]["default"] / r["side_by_side_ms"][f"ga@{max(budgets)}"] for r in rows]
    summary["ga_vs_default_speedup"] = round(statistics.geometric_mean(ga_top), 3) if ga_top else None
    ms_rows = [r for r in rows if "metaschedule" in r["side_by_side_ms"]]
    summary["ga_vs_metaschedule_speedup"] = (
        round(statistics.geometric_mean([r["side_by_side_ms"]["metaschedule"] / r["side_by_side_ms"][f"ga@{max(budgets)}"]
                                         for r in ms_rows]), 3) if ms_rows else None)
    summary["metaschedule_ran_on"] = f"{len(ms_rows)} of {len(rows)} workloads"
    write_json(args.json, {
        "machine": {"cpu": platform.processor() or target["mcpu"], "mcpu": target["mcpu"], "cores": host_cores(),
                    "threads": host_cores()},
        "versions": {"tvm": tvm.__version__},
        "budgets": budgets, "seed": args.seed, "ms_trials": args.ms_trials, "rounds": args.rounds,
        "timing": {"tuning": vars(PLAN), "side_by_side": vars(FINAL_PLAN)},
        "summary": summary, "tuning_cost": cost, "workloads": rows,
        "wall_seconds": round(time.perf_counter() - started, 1),
    })
    print(f"summary: {summary}\ntuning cost: {cost}\nwrote {args.json} and {args.plot}")


def print_table(rows: list[dict], budgets: list[int]) -> None:
    head = f"{'model':<18} {'workload':<40} {'default':>8}" + "".join(f" {f'ga@{b}':>8} {f'rnd@{b}':>8}" for b in budgets)
    print(head + f" {'MS':>8}   (ms, side by side)")
    for r in rows:
        ms = r["side_by_side_ms"]
        line = f"{r['model']:<18} {r['label'][:40]:<40} {ms['default']:>8.3f}"
        line += "".join(f" {ms[f'ga@{b}']:>8.3f} {ms[f'random@{b}']:>8.3f}" for b in budgets)
        line += f" {ms['metaschedule']:>8.3f}" if "metaschedule" in ms else f" {'-':>8}"
        print(line)


if __name__ == "__main__":
    main()
