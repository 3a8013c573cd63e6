"""Model-zoo conformance: third-party architectures compiled as a user would bring them.

    python benchmarks/zoo.py [--nets fpn-mobilenetv2,...] [--rounds 8] [--threads N]
                             [--json benchmarks/results/zoo.json]

Every net of ``benchmarks/zoo_designs`` (plain-PyTorch reimplementations of the designs that
torchvision, timm, segmentation_models_pytorch and the real-time segmentation papers ship;
random weights, nothing downloaded) goes the two ways a user brings a model:

- exported to ONNX with ``torch.onnx.export`` (the default exporter; the TorchScript one where
  that fails) and compiled with ``edgeprune compile x.onnx``: its output against ONNX Runtime's
  (max error over the output's largest magnitude), its latency against ONNX Runtime's at the
  same thread count (paired ratios of alternating rounds, ``base.timing.paired_ratios``), and
  every kernel a schedule rule could not take (fallbacks to the generic schedule);
- as ``--model benchmarks.zoo_designs.MODULE:FUNCTION``: compiled from a checkpoint directory, and
  analysed for pruning: the share of its conv/linear MACs that sits in prunable channel groups
  (every group pruned to one channel), and why the other groups cannot be pruned.

A net that fails a stage gets that stage's one-line error in its row; the anchors are the
issue's goals: no fallback on convs, error <= 1e-4 of the output scale, <= 1.2x ONNX Runtime,
>= 80% prunable MACs.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.zoo_designs import ZOO, ZooNet  # noqa: E402
from edgeprune import compiler  # noqa: E402
from edgeprune.base.errors import EdgepruneError, first_line  # noqa: E402
from edgeprune.base.fileio import write_json  # noqa: E402
from edgeprune.base.timing import alternate_timers, paired_ratios, wall_clock  # noqa: E402
from edgeprune.compiler.artifact import load_artifact, read_meta  # noqa: E402
from edgeprune.compiler.target import host_cores  # noqa: E402
from edgeprune.device.compare import onnxruntime_engine  # noqa: E402
from edgeprune.pruning.checkpoint import ArchInfo, save_checkpoint  # noqa: E402
from edgeprune.pruning.coupling import analyze, default_prunable  # noqa: E402
from edgeprune.pruning.macs import count_cost  # noqa: E402
from edgeprune.pruning.models import build_model  # noqa: E402
from edgeprune.pruning.regularizer import MacsModel  # noqa: E402

DEFAULT_JSON = REPO / "benchmarks" / "results" / "zoo.json"
GOALS = {"max_rel_error": 1e-4, "max_ratio_to_ort": 1.2, "min_prunable_macs": 0.8}


def spec_of(net: ZooNet) -> str:
    """The ``--model`` spelling of the net's builder."""
    return f"{net.builder.__module__}:{net.builder.__name__}"


def export_onnx(model: torch.nn.Module, x: torch.Tensor, path: Path) -> str:
    """Export as a user would: the default exporter, else the TorchScript one; returns which."""
    for exporter, dynamo in (("dynamo", True), ("torchscript", False)):
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
                warnings.simplefilter("ignore")
                torch.onnx.export(model, (x,), str(path), input_names=["input"], output_names=["logits"],
                                  opset_version=17, dynamo=dynamo)
            return exporter
        except Exception:  # noqa: BLE001 - the other exporter is the user's next try
            continue
    raise EdgepruneError("neither ONNX exporter could export the model")


def fallbacks(artifact: Path) -> list[str]:
    """Kernels a specific rule matched but could not schedule, and convs left to the generic rule."""
    meta = read_meta(artifact)
    return [s["func"] for s in meta.schedules if s.get("fallback") or (s["rule"] == "generic" and "conv" in s["func"])]


def compile_onnx(net: ZooNet, model: torch.nn.Module, x: np.ndarray, work: Path, rounds: int, threads: int) -> dict:
    row: dict = {}
    onnx_path = work / f"{net.name}.onnx"
    row["exporter"] = export_onnx(model, torch.from_numpy(x), onnx_path)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        artifact_dir = compiler.compile(onnx_path, out=work / f"{net.name}.art")
    row["compile_s"] = round(time.perf_counter() - started, 1)
    row["fallbacks"] = fallbacks(artifact_dir)
    row["rules"] = dict(Counter(s["rule"] for s in read_meta(artifact_dir).schedules))
    artifact = load_artifact(artifact_dir, num_threads=threads)
    ort = onnxruntime_engine(onnx_path, threads)
    ours, theirs = np.asarray(artifact(x)), np.asarray(ort(x)[0])
    row["max_rel_error"] = float(np.abs(ours - theirs).max() / max(float(np.abs(theirs).max()), 1e-12))
    times = alternate_timers({"edgeprune": wall_clock(artifact, x), "onnxruntime": wall_clock(ort, x)},
                             rounds, runs=3, warmup=1)
    row["median_ms"] = {name: round(float(np.median(t)), 3) for name, t in times.items()}
    row["ratio_to_ort"] = round(paired_ratios(times, "onnxruntime", runs=3)["edgeprune"], 3)
    return row


def from_checkpoint(net: ZooNet, work: Path) -> dict:
    """Compile the net named as ``--model pkg.mod:fn`` and measure what pruning can reach."""
    spec = spec_of(net)
    torch.manual_seed(0)
    model = build_model(spec).eval()
    shape = (1, 3, *net.input_hw)
    with torch.no_grad():
        classes = int(model(torch.zeros(shape)).shape[1])
    arch = ArchInfo(model=spec, num_classes=classes, input_shape=list(shape), mean=[0.0] * 3, std=[1.0] * 3)
    ckpt = save_checkpoint(work / f"{net.name}.ckpt", model, arch, {}, export=False)
    row: dict = {"spec": spec}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compiler.compile(ckpt, out=work / f"{net.name}.ckpt-art")
        row["checkpoint_compile"] = "ok"
    except EdgepruneError as exc:
        row["checkpoint_compile"] = str(exc)
    graph = analyze(model, torch.zeros(shape), default_prunable(spec))
    total = count_cost(model, shape).macs
    reach = MacsModel(graph, total, min_keep=0.0)
    row["prunable_macs"] = round(1.0 - reach.min_macs() / total, 3)
    blocked = Counter(g.reason.split(":")[0] for g in graph.groups if not g.prunable)
    row["unprunable_groups"] = dict(blocked.most_common(4))
    return row


def run_net(net: ZooNet, work: Path, rounds: int, threads: int) -> dict:
    row: dict = {"net": net.name, "mirrors": net.mirrors, "task": net.task, "input": [1, 3, *net.input_hw]}
    torch.manual_seed(0)
    model = net.builder().eval()
    x = np.random.default_rng(0).standard_normal((1, 3, *net.input_hw)).astype(np.float32)
    for stage, fn in (("onnx", lambda: compile_onnx(net, model, x, work, rounds, threads)),
                      ("checkpoint", lambda: from_checkpoint(net, work))):
        try:
            row.update(fn())
        except Exception as exc:  # noqa: BLE001 - a failing net is a row, and the next net runs
            row[f"{stage}_error"] = f"{type(exc).__name__}: {first_line(exc)}"
    return row


def meets_goals(row: dict) -> dict[str, bool]:
    return {
        "compiles": "onnx_error" not in row and row.get("checkpoint_compile") == "ok",
        "no_fallback": not row.get("fallbacks", ["?"]),
        "matches_ort": row.get("max_rel_error", 1.0) <= GOALS["max_rel_error"],
        "within_1.2x_ort": row.get("ratio_to_ort", 99.0) <= GOALS["max_ratio_to_ort"],
        "prunable_80pct": row.get("prunable_macs", 0.0) >= GOALS["min_prunable_macs"],
    }


def row_line(row: dict) -> str:
    nan = float("nan")
    missed = [goal for goal, met in row["goals"].items() if not met]
    error = row.get("onnx_error") or row.get("checkpoint_error") or ""
    return (f"{row['net']:<26} err {row.get('max_rel_error', nan):9.2e}  x ORT {row.get('ratio_to_ort', nan):5.2f}  "
            f"fallbacks {len(row.get('fallbacks', [])):2d}  prunable {row.get('prunable_macs', nan):5.2f}  "
            f"{'MISSES ' + ','.join(missed) if missed else 'ok'}  {error[:90]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nets", help="comma-separated zoo names (default: all)")
    parser.add_argument("--rounds", type=int, default=8, help="alternating timing rounds per net")
    parser.add_argument("--threads", type=int, default=host_cores())
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()
    names = args.nets.split(",") if args.nets else list(ZOO)
    unknown = [n for n in names if n not in ZOO]
    if unknown:
        parser.error(f"unknown nets {unknown}; known: {', '.join(ZOO)}")
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgeprune-zoo-") as tmp:
        for name in names:
            row = run_net(ZOO[name], Path(tmp), args.rounds, args.threads)
            row["goals"] = meets_goals(row)
            rows.append(row)
            print(row_line(row), flush=True)
    summary = {goal: sum(r["goals"][goal] for r in rows) for goal in rows[0]["goals"]} if rows else {}
    print(f"\n{len(rows)} nets; meeting each goal: " + ", ".join(f"{k} {v}" for k, v in summary.items()))
    write_json(args.json, {"machine": {"cpu": platform.processor() or platform.machine(), "threads": args.threads},
                           "goals": GOALS, "rounds": args.rounds, "summary": summary, "nets": rows})
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
