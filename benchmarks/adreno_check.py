"""Compile the segmentation models for an Adreno GPU and check every OpenCL kernel on PoCL.

    python benchmarks/adreno_check.py [--models topformer-tiny,...] [--target adreno660] [--quick]
                                      [--json benchmarks/results/adreno_check.json]

Each model (seeded random weights, BatchNorm statistics randomized so folding is exercised) is
saved as a checkpoint and compiled with ``edgeprune compile --target adreno660`` (Android aarch64
library, OpenCL kernels embedded); then ``edgeprune check`` runs every kernel on this machine's
OpenCL device and compares it with the same PrimFunc compiled for this CPU. Beside each model's
GPU figures, measured in the same run: the same checkpoint's host (x86 CPU) compile time, the
anchor for the compile time, and the same model scheduled by TVM's dlight rules alone (without
edgeprune's ``SmallReduction``), checked the same way, the anchor for the kernel times. PoCL's
kernel times are a CPU running OpenCL, not a phone: they rank schedules only roughly.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from edgeprune import compiler
from edgeprune.base.fileio import write_json
from edgeprune.compiler.schedules.gpu import gpu_rules
from edgeprune.compiler.target import make_target
from edgeprune.compiler.targets import resolve_target
from edgeprune.device.opencl_check import check_artifact

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "adreno_check.json"
FULL_SIZES = {"topformer-tiny": (512, 512), "topformer-base": (512, 512), "deeplabv3plus-mbv2": (512, 1024)}
QUICK_SIZES = {name: (h // 4, w // 4) for name, (h, w) in FULL_SIZES.items()}


def save_model(name: str, hw: tuple[int, int], out: Path) -> Path:
    from edgeprune.pruning.checkpoint import ArchInfo, save_checkpoint
    from edgeprune.pruning.models import build_model

    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = build_model(name).eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=gen) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
    arch = ArchInfo(model=name, num_classes=model.edgeprune_config.get("num_classes") or 1,
                    input_shape=[1, 3, *hw], mean=[0.0] * 3, std=[1.0] * 3, config=model.edgeprune_config)
    return save_checkpoint(out, model, arch, {})


def bench_model(name: str, hw: tuple[int, int], tmp: Path, target: str) -> dict:
    ckpt = save_model(name, hw, tmp / f"{name}.ckpt")
    start = time.perf_counter()
    compiler.compile(ckpt, target="host", out=tmp / f"{name}.host")
    host_s = time.perf_counter() - start
    start = time.perf_counter()
    art = compiler.compile(ckpt, target=target, out=tmp / f"{name}.{target}")
    gpu_s = time.perf_counter() - start
    meta = compiler.artifact.read_meta(art)
    report = check_artifact(art)
    counts = report.counts()
    dlight_rules = [r for r in gpu_rules(make_target(resolve_target(target))) if r.name != "edgeprune.SmallReduction"]
    dlight = check_artifact(compiler.compile(ckpt, target=target, out=tmp / f"{name}.dlight", rules=dlight_rules))
    small = {s["func"] for s in meta.schedules if s["rule"] == "edgeprune.SmallReduction"}
    return {
        "model": name, "input": [1, 3, *hw], "target": target,
        "funcs": meta.opencl["funcs"], "kernels": len(report.results), "ok": counts.get("ok", 0),
        "mismatch": counts.get("mismatch", 0), "build_failed": counts.get("build_failed", 0),
        "run_failed": counts.get("run_failed", 0),
        "compile_s": round(gpu_s, 1), "host_compile_s": round(host_s, 1),
        "so_bytes": (art / compiler.artifact.LIB_FILE).stat().st_size,
        "opencl_source_bytes": (art / meta.opencl["source"]).stat().st_size,
        "linker": meta.linker, "check_s": round(report.seconds, 1),
        "pocl_kernel_ms_total": round(sum(r.pocl_ms or 0.0 for r in report.results), 1),
        "small_reduction_funcs": len(small),
        "pocl_ms_small_reduction_funcs": round(sum(r.pocl_ms or 0.0 for r in report.results if r.func in small), 1),
        "dlight_only": {"ok": dlight.counts().get("ok", 0), "kernels": len(dlight.results),
                        "pocl_kernel_ms_total": round(sum(r.pocl_ms or 0.0 for r in dlight.results), 1),
                        "pocl_ms_same_funcs": round(sum(r.pocl_ms or 0.0 for r in dlight.results if r.func in small), 1)},
        "worst_max_error": max((r.max_error or 0.0 for r in report.results), default=0.0),
        "not_ok": [r.to_json() for r in report.results if r.status != "ok"],
        "check_device": report.device,
    }


def format_table(rows: list[dict]) -> str:
    head = (f"{'model':<20} {'input':>10} {'kernels':>7} {'ok':>4} {'compile s':>9} {'host s':>7} "
            f"{'.so MiB':>8} {'check s':>8} {'PoCL ms':>9} {'dlight ms':>9} {'max err':>9}")
    lines = [head]
    for r in rows:
        lines.append(f"{r['model']:<20} {'x'.join(map(str, r['input'][2:])):>10} {r['kernels']:>7} {r['ok']:>4} "
                     f"{r['compile_s']:>9.1f} {r['host_compile_s']:>7.1f} {r['so_bytes'] / 2**20:>8.2f} "
                     f"{r['check_s']:>8.1f} {r['pocl_kernel_ms_total']:>9.1f} "
                     f"{r['dlight_only']['pocl_kernel_ms_total']:>9.1f} {r['worst_max_error']:>9.2e}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(FULL_SIZES), help="comma-separated model names")
    parser.add_argument("--target", default="adreno660")
    parser.add_argument("--quick", action="store_true", help="quarter-size inputs")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgeprune-adreno-") as tmp:
        for name in args.models.split(","):
            rows.append(bench_model(name, sizes[name], Path(tmp), args.target))
            print(f"{name}: {rows[-1]['ok']}/{rows[-1]['kernels']} kernels ok", flush=True)
    print(format_table(rows))
    print("dlight ms: the same model scheduled by TVM's dlight rules alone (no SmallReduction), same check")
    print(f"PoCL times are {rows[0]['check_device'] if rows else 'PoCL'} running the OpenCL kernels, not a phone GPU")
    import tvm

    write_json(args.json, {"versions": {"tvm": tvm.__version__}, "quick": args.quick, "models": rows,
                           "all_ok": all(r["ok"] == r["kernels"] for r in rows)})
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
