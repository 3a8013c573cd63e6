"""Latency of edgeprune-compiled models against ONNX Runtime and PyTorch eager, on this CPU.

    python benchmarks/compiler_vs_ort.py [--models topformer-tiny,...] [--quick] [--threads N]
                                         [--json benchmarks/results/compiler_vs_ort.json] [--tuning-log LOG]

Each model (seeded random weights; latency does not depend on them) is saved as a checkpoint,
``topformer-pruned`` being the TopFormer supernet channel-pruned to half its MACs (L1 magnitude
fitted to the target, then sliced: the shape a bi-level run produces, without its training),
compiled with the default schedules (no tuning; with ``--tuning-log`` also with the log's
fastest configs, timed as a fourth engine), and exported to ONNX. The engines run
the same input with the same thread count, alternately: every round runs each engine once to
warm up (absorbing the previous engine's spinning threads) and then ``--runs`` timed times;
the reported time is the median over all timed runs, the ratio to ONNX Runtime the median over
rounds of the ratio within each round (``base.timing.paired_ratios``: the machine's load
can change level mid-run, and then two whole-run medians compare different levels). Then every
conv kernel of the compiled model is timed on its own and reported in GFLOP/s beside an
estimate of the machine's peak (the best of a few register-tiled, cache-resident 1x1
convolutions).
"""

from __future__ import annotations

import argparse
import math
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from edgeprune import compiler
from edgeprune.base.fileio import write_json
from edgeprune.base.timing import medians, paired_ratios
from edgeprune.compiler.build import fuse
from edgeprune.compiler.frontend import import_model
from edgeprune.compiler.kernel_timer import kernel_timer
from edgeprune.compiler.passes.structure import kernel_calls
from edgeprune.compiler.schedules.registry import rules_for, schedule_module
from edgeprune.compiler.target import hardware_of, host_cores, make_target
from edgeprune.compiler.targets import resolve_target
from edgeprune.compiler.threads import set_num_threads
from edgeprune.compiler.tuner.log import tuning_configs
from edgeprune.compiler.tuner.measure import arg_specs
from edgeprune.device.compare import Engine, alternate, onnxruntime_engine
from edgeprune.device.runners.kernels import random_args

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "compiler_vs_ort.json"
FULL_SIZES = {"topformer-tiny": (512, 512), "topformer-base": (512, 512), "topformer-pruned": (512, 512),
              "deeplabv3plus-mbv2": (512, 1024)}
QUICK_SIZES = {name: (h // 2, w // 2) for name, (h, w) in FULL_SIZES.items()}
PRUNED = {"topformer-pruned": ("topformer-supernet", 0.5)}  # name -> (unpruned model, fraction of its MACs)
CONV_OPS = ("conv2d_1x1", "conv2d", "depthwise_conv2d", "expand_depthwise", "depthwise_pointwise")


def magnitude_pruned(model: torch.nn.Module, name: str, shape: tuple[int, ...], fraction: float):
    """``model`` sliced to ``fraction`` of its MACs by L1 magnitude; returns it and its policy."""
    from edgeprune.pruning.coupling import analyze, default_prunable
    from edgeprune.pruning.fit_target import fit_to_target
    from edgeprune.pruning.macs import count_cost
    from edgeprune.pruning.magnitude import l1_scores
    from edgeprune.pruning.regularizer import MacsModel
    from edgeprune.pruning.slicing import policy_to_json, slice_model

    graph = analyze(model, torch.zeros(shape), default_prunable(name))
    macs = MacsModel(graph, count_cost(model, shape).macs)
    scores = l1_scores(model, graph)
    whole = {g: torch.ones_like(s, dtype=torch.bool) for g, s in scores.items()}
    keep = fit_to_target(scores, whole, macs, fraction * macs.full_macs())
    kept = {g: torch.nonzero(k).flatten() for g, k in keep.items()}
    return slice_model(model, graph, kept).eval(), policy_to_json(graph, kept)


def save_model(name: str, hw: tuple[int, int], out: Path) -> Path:
    from edgeprune.pruning.checkpoint import ArchInfo, save_checkpoint
    from edgeprune.pruning.models import build_model

    base, fraction = PRUNED.get(name, (name, None))
    torch.manual_seed(0)
    model = build_model(base).eval()
    policy = None
    if fraction is not None:
        model, policy = magnitude_pruned(model, base, (1, 3, *hw), fraction)
    arch = ArchInfo(
        model=base, num_classes=model.edgeprune_config.get("num_classes") or 1,
        input_shape=[1, 3, *hw], mean=[0.0] * 3, std=[1.0] * 3, config=model.edgeprune_config, policy=policy,
    )
    return save_checkpoint(out, model, arch, {})


def engines(ckpt: Path, art: Path, threads: int, tuned_art: Path | None = None) -> dict[str, Engine]:
    from edgeprune.pruning.checkpoint import load_checkpoint

    artifact = compiler.load_artifact(art, num_threads=threads)
    model = load_checkpoint(ckpt).model.eval()
    torch.set_num_threads(threads)

    def run_torch(x: np.ndarray) -> object:
        with torch.no_grad():
            return model(torch.from_numpy(x))

    tuned = {"edgeprune_tuned": compiler.load_artifact(tuned_art, num_threads=threads)} if tuned_art else {}
    return {
        "edgeprune": artifact,
        **tuned,
        "onnxruntime": onnxruntime_engine(ckpt / "model.onnx", threads),
        "torch": run_torch,
    }


def time_kernel(func, target, number: int = 20, repeat: int = 5) -> float:
    """Best-of-repeats seconds of one PrimFunc on random inputs."""
    import tvm

    lib = tvm.compile(tvm.IRModule({"main": func.with_attr("global_symbol", "main")}), target)
    timer = kernel_timer(lib, random_args(arg_specs(func), tvm.cpu()), number)
    return min(timer() for _ in range(repeat)) / 1e3


def conv_kernels(ckpt: Path, target) -> list[dict]:
    """Every conv kernel of the compiled model, timed alone: calls, microseconds, GFLOP/s."""
    fused = fuse(import_model(ckpt), target)
    calls = kernel_calls(fused)
    rule_list = rules_for(target)
    scheduled, records = schedule_module(fused, rule_list)
    rules = {r.name: r for r in rule_list}
    rows = []
    for record in records:
        if record.workload.split("(")[0] not in CONV_OPS:
            continue
        wl = rules[record.rule].matches(fused[record.func])
        seconds = time_kernel(scheduled[record.func], target)
        rows.append({
            "kernel": record.func, "workload": record.workload, "config": record.config,
            "calls": calls.count(record.func), "us": round(seconds * 1e6, 2),
            "gflops": round(rules[record.rule].flops(wl) / seconds / 1e9, 1),
        })
    return rows


def peak_gflops(target) -> float:
    """Best GFLOP/s of a cache-resident 256->256 channel 1x1 conv over a few register tilings."""
    import tvm
    from tvm import relax

    from edgeprune.compiler.passes import FuseEpilogue
    from edgeprune.compiler.schedules.cpu.conv1x1 import Conv1x1

    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, 256, 24, 32), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            w = relax.const(np.ones((256, 256, 1, 1), "float32"))
            out = bb.emit_output(relax.op.nn.conv2d(x, w))
        bb.emit_func_output(out)
    mod = FuseEpilogue()(bb.get())
    func = next(f for f in mod.functions.values() if isinstance(f, tvm.tirx.PrimFunc))
    rule = Conv1x1(hardware_of(target))
    wl = rule.matches(func)
    best = 0.0
    lanes = hardware_of(target).vector_lanes
    for tile_co, nvec in ((4, 4), (6, 2), (8, 2), (8, 1), (12, 2)):
        config = rule.check_config(wl, {"tile_co": tile_co, "vec": lanes, "nvec": nvec, "panel": 0, "order": "spatial"})
        best = max(best, rule.flops(wl) / time_kernel(rule.schedule(func, wl, config), target, number=50) / 1e9)
    return best


def bench_model(name: str, hw: tuple[int, int], workdir: Path, threads: int, rounds: int, runs: int, target,
                tuning_configs: dict | None = None) -> dict:
    ckpt = save_model(name, hw, workdir / f"{name}-ckpt")
    started = time.perf_counter()
    art = compiler.compile(ckpt, out=workdir / f"{name}-art")
    compile_s = time.perf_counter() - started
    tuned_art = compiler.compile(ckpt, tuning_configs=tuning_configs, out=workdir / f"{name}-tuned") if tuning_configs else None
    x = np.random.default_rng(0).standard_normal((1, 3, *hw)).astype(np.float32)
    times = alternate(engines(ckpt, art, threads, tuned_art), x, rounds, runs)
    kernels = conv_kernels(ckpt, target)
    return {
        "model": name,
        "input_shape": [1, 3, *hw],
        "compile_seconds": round(compile_s, 2),
        "median_ms": {k: round(v, 3) for k, v in medians(times).items()},
        "ratio_to_ort": {k: round(v, 3) for k, v in paired_ratios(times, "onnxruntime", runs).items()},
        "runs_ms": {k: [round(t, 3) for t in v] for k, v in times.items()},
        "conv_kernels": kernels,
    }


def format_table(rows: list[dict], peak: float) -> str:
    lines = [f"{'model':<20} {'input':>9} {'edgeprune':>10} {'ORT':>8} {'torch':>8} {'ep/ORT':>7} {'torch/ORT':>9} {'compile s':>9}"]
    for row in rows:
        h, w = row["input_shape"][2:]
        ms, ratio = row["median_ms"], row["ratio_to_ort"]
        lines.append(
            f"{row['model']:<20} {f'{h}x{w}':>9} {ms['edgeprune']:>10.2f} {ms['onnxruntime']:>8.2f} {ms['torch']:>8.2f} "
            f"{ratio['edgeprune']:>7.2f} {ratio['torch']:>9.2f} {row['compile_seconds']:>9.1f}"
        )
        if "edgeprune_tuned" in ms:
            lines.append(f"{'  tuned':<20} {'':>9} {ms['edgeprune_tuned']:>10.2f} {'':>8} {'':>8} {ratio['edgeprune_tuned']:>7.2f}")
    lines.append(f"(ms: median per inference; ratios: median of per-round ratios; peak estimate {peak:.0f} GFLOP/s)")
    for row in rows:
        kernels = row["conv_kernels"]
        total_us = sum(k["us"] * k["calls"] for k in kernels)
        lines.append(f"\n{row['model']}: conv kernels, {total_us / 1e3:.2f} ms in all (timed alone)")
        lines.append(f"  {'us':>8} {'calls':>5} {'GFLOP/s':>8} {'%peak':>6}  workload")
        for k in sorted(kernels, key=lambda k: -k["us"] * k["calls"])[:12]:
            lines.append(f"  {k['us']:>8.1f} {k['calls']:>5} {k['gflops']:>8.1f} {100 * k['gflops'] / peak:>5.0f}%  {k['workload']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(FULL_SIZES), help="comma-separated built-in model names")
    parser.add_argument("--quick", action="store_true", help="half the input sides, fewer rounds")
    parser.add_argument("--threads", type=int, default=host_cores(), help="threads for every engine (default: all cores)")
    parser.add_argument("--rounds", type=int, help="alternation rounds (default 10, quick 4)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per engine per round")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write the results")
    parser.add_argument("--tuning-log", type=Path,
                        help="also time each model compiled with this tuning log's best records ('edgeprune_tuned')")
    args = parser.parse_args()
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in sizes]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(sizes)}")
    rounds = args.rounds or (4 if args.quick else 10)
    target_spec = resolve_target("host")
    target = make_target(target_spec)
    set_num_threads(args.threads)
    peak = peak_gflops(target)
    configs = tuning_configs(args.tuning_log, target_spec) if args.tuning_log else None
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgeprune-bench-") as tmp:
        for name in names:
            rows.append(bench_model(name, sizes[name], Path(tmp), args.threads, rounds, args.runs, target, configs))
            print(f"{name}: done", flush=True)
    print(format_table(rows, peak))
    import onnxruntime
    import tvm

    write_json(args.json, {
        "machine": {"cpu": platform.processor() or target_spec["mcpu"], "mcpu": target_spec["mcpu"], "cores": host_cores(),
                    "threads": args.threads, "peak_gflops_estimate": round(peak, 1)},
        "versions": {"tvm": tvm.__version__, "onnxruntime": onnxruntime.__version__, "torch": torch.__version__},
        "quick": args.quick,
        "rounds": rounds,
        "runs_per_round": args.runs,
        "tuning_log": str(args.tuning_log) if args.tuning_log else None,
        "models": rows,
        "worst_ratio_to_ort": round(max(r["ratio_to_ort"]["edgeprune"] for r in rows), 3) if rows else math.nan,
    })
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
