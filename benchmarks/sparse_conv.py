"""Grouped column-sparse convs: storage and latency against dense, CSR and BSR.

    python benchmarks/sparse_conv.py [--sparsity 0.5 0.75 0.9] [--rounds 15] [--threads 1] [--json PATH]

Shapes are convs of TopFormer-Base at 512x512 (``pruning.models``): its 1x1 convs, and a
3x3 64->64 at 64x64 (TopFormer's own 3x3 convs are depth-wise, which have no column GEMM
view; DeepLabV3+'s decoder has dense 3x3s of this kind). Weights are random with column
sparsity ``s`` and 8 distinct kept-column patterns spread over shuffled rows
(``compiler.sparse.synthetic``), the shape of weights that column masks with row groups give.

Storage: bytes of our format (reordered + merged) vs dense, CSR and BSR (4x4 blocks) on the
same weights, float32 values and equal index widths (``compiler.sparse.sizes``), also across
pattern counts (4 .. one per row) at 75%.

Latency, one thread for every kernel (scipy's CSR product is single-threaded), all measured
in one run, alternating round by round (each warmed up first), median of ``--rounds`` rounds
of 10 calls each:
  dense      our dense conv schedule (``conv1x1`` / ``conv2d`` rule, default config), + bias
  sparse     our grouped sparse kernel, rows reordered (exact groups + cost-model merge), + bias
  no-reorder the same kernel on the original row order (only adjacent equal rows share a group)
  csr        scipy CSR @ im2col matrix (im2col by ``torch.nn.functional.unfold`` included), + bias

The issue's goal: at 75% sparsity, at least 2x faster than dense and smaller than CSR.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import scipy.sparse
import torch
import torch.nn.functional as F
import tvm
from tvm import relax

from edgeprune.base.fileio import write_json
from edgeprune.base.timing import alternate_timers, medians, wall_clock
from edgeprune.compiler.kernel_timer import kernel_timer
from edgeprune.compiler.passes import FuseEpilogue
from edgeprune.compiler.schedules.cpu import cpu_rules
from edgeprune.compiler.schedules.registry import match
from edgeprune.compiler.sparse import format as fmt
from edgeprune.compiler.sparse.kernel import Structure, bias_epilogue, geometry, kernel_args, sparse_conv_func
from edgeprune.compiler.sparse.reorder import consecutive_groups, reorder
from edgeprune.compiler.sparse.sizes import bsr_bytes, csr_bytes, dense_bytes
from edgeprune.compiler.sparse.synthetic import column_sparse
from edgeprune.compiler.target import hardware_of, make_target
from edgeprune.compiler.targets import resolve_target
from edgeprune.compiler.threads import set_num_threads

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "sparse_conv.json"
# (label, in, out, kernel, stride, H=W of the input)
SHAPES = (
    ("tpm.layers.4.conv.0 1x1 64->192 @64", 64, 192, 1, 1, 64),
    ("tpm.layers.6.conv.0 1x1 128->384 @32", 128, 384, 1, 1, 32),
    ("head.linear_fuse 1x1 256->256 @64", 256, 256, 1, 1, 64),
    ("3x3 64->64 @64", 64, 64, 3, 1, 64),
)
PATTERNS = 8
PATTERN_COUNTS = (4, 16, 64, 0)  # 0: one pattern per row
CALLS = 10  # calls per timed measurement


def dense_conv_lib(ci: int, co: int, k: int, stride: int, hw: int, target, rules):
    """Our dense conv + bias kernel, compiled, and the rule that scheduled it."""
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, ci, hw, hw), "float32"))
    w = relax.Var("w", relax.TensorType((co, ci, k, k), "float32"))
    b = relax.Var("b", relax.TensorType((1, co, 1, 1), "float32"))
    with bb.function("main", [x, w, b]):
        with bb.dataflow():
            y = relax.op.nn.conv2d(x, w, strides=stride, padding=k // 2)
            out = bb.emit_output(relax.op.add(y, b))
        bb.emit_func_output(out)
    mod = FuseEpilogue()(bb.get())
    func = next(f for f in mod.functions.values() if isinstance(f, tvm.tirx.PrimFunc))
    rule, workload = match(rules, func)
    scheduled = rule.schedule(func, workload, rule.default(workload))
    return tvm.compile(tvm.IRModule({"main": scheduled.with_attr("global_symbol", "main")}), target), rule.name


def sparse_conv_lib(sparse, geom, target, rules):
    func = sparse_conv_func(geom, Structure.of(sparse), bias_epilogue(geom.co))
    rule, workload = match(rules, func)
    return tvm.compile(tvm.IRModule({"main": rule.schedule(func, workload, rule.default(workload))}), target)


def csr_conv(csr: scipy.sparse.csr_matrix, bias: np.ndarray, k: int, stride: int, geom):
    def run(x: torch.Tensor) -> np.ndarray:
        cols = F.unfold(x, k, padding=k // 2, stride=stride)[0].numpy() if k > 1 or stride > 1 else x[0].reshape(x.shape[1], -1).numpy()
        return (csr @ cols + bias[:, None]).reshape(1, -1, geom.oh, geom.ow)

    return run


def storage_row(label: str, weight: np.ndarray, sparsity: float, patterns: int) -> dict:
    matrix = fmt.gemm_view(weight)
    grouped = fmt.encode(weight, reorder(weight))
    return {
        "shape": label, "sparsity": sparsity, "patterns": patterns or matrix.shape[0],
        "groups": grouped.num_groups, "explicit_zeros": grouped.explicit_zeros,
        "ours_bytes": grouped.nbytes, "dense_bytes": dense_bytes(matrix),
        "csr_bytes": csr_bytes(matrix), "bsr_bytes": bsr_bytes(matrix),
    }


def latency_row(label, ci, co, k, stride, hw, sparsity, rounds, target, rules) -> dict:
    weight = column_sparse((co, ci, k, k), sparsity, PATTERNS, seed=co + ci + k)
    geom = geometry(1, ci, hw, hw, co, k, stride)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, ci, hw, hw)).astype(np.float32)
    bias = rng.standard_normal(co).astype(np.float32)
    reordered = fmt.encode(weight, reorder(weight))
    plain = fmt.encode(weight, consecutive_groups(weight))
    dense_lib, dense_rule = dense_conv_lib(ci, co, k, stride, hw, target, rules)
    out = lambda: tvm.runtime.tensor(np.zeros((1, co, geom.oh, geom.ow), np.float32))  # noqa: E731
    t = tvm.runtime.tensor
    libs = {
        "dense": (dense_lib, [t(x), t(weight), t(bias.reshape(1, co, 1, 1)), out()]),
        "sparse": (sparse_conv_lib(reordered, geom, target, rules), [t(x), *map(t, kernel_args(reordered)), t(bias), out()]),
        "no_reorder": (sparse_conv_lib(plain, geom, target, rules), [t(x), *map(t, kernel_args(plain)), t(bias), out()]),
    }
    reference = F.conv2d(torch.from_numpy(x), torch.from_numpy(weight), torch.from_numpy(bias), stride=stride, padding=k // 2).numpy()
    for name, (lib, args) in libs.items():
        lib["main"](*args)
        error = float(np.abs(args[-1].numpy() - reference).max())
        if error > 1e-3:
            raise AssertionError(f"{label} {name}: max error {error}")
    csr = csr_conv(scipy.sparse.csr_matrix(fmt.gemm_view(weight)), bias, k, stride, geom)
    timers = {name: kernel_timer(lib, args, CALLS) for name, (lib, args) in libs.items()}
    timers["csr"] = wall_clock(csr, torch.from_numpy(x), calls=CALLS)
    ms = medians(alternate_timers(timers, rounds, warmup=1))
    return {
        "shape": label, "sparsity": sparsity, "dense_rule": dense_rule,
        "groups": reordered.num_groups, "groups_no_reorder": plain.num_groups,
        **{f"{name}_ms": round(v, 4) for name, v in ms.items()},
        "speedup_vs_dense": round(ms["dense"] / ms["sparse"], 3),
        "speedup_vs_csr": round(ms["csr"] / ms["sparse"], 3),
        "reorder_gain": round(ms["no_reorder"] / ms["sparse"], 3),
        "ours_bytes": reordered.nbytes, "csr_bytes": csr_bytes(fmt.gemm_view(weight)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sparsity", type=float, nargs="+", default=[0.5, 0.75, 0.9])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    set_num_threads(args.threads)
    target = make_target(resolve_target("host"))
    rules = cpu_rules(hardware_of(target))

    storage = []
    for label, ci, co, k, _, _ in SHAPES:
        for sparsity in args.sparsity:
            storage.append(storage_row(label, column_sparse((co, ci, k, k), sparsity, PATTERNS, seed=co + ci + k), sparsity, PATTERNS))
        for patterns in PATTERN_COUNTS:
            count = patterns or co
            if patterns != PATTERNS and (patterns == 0 or patterns < co):
                storage.append(storage_row(label, column_sparse((co, ci, k, k), 0.75, count, seed=co + ci + k), 0.75, patterns))
    print(f"{'shape':40} {'sp':>5} {'pat':>4} {'grp':>4} {'ours':>9} {'dense':>9} {'csr':>9} {'bsr4x4':>9} {'ours/csr':>8}")
    for r in storage:
        print(f"{r['shape']:40} {r['sparsity']:5.2f} {r['patterns']:4d} {r['groups']:4d} {r['ours_bytes']:9d} "
              f"{r['dense_bytes']:9d} {r['csr_bytes']:9d} {r['bsr_bytes']:9d} {r['ours_bytes'] / r['csr_bytes']:8.2f}")

    latency = []
    for label, ci, co, k, stride, hw in SHAPES:
        for sparsity in args.sparsity:
            row = latency_row(label, ci, co, k, stride, hw, sparsity, args.rounds, target, rules)
            latency.append(row)
            print(f"{label:40} {sparsity:4.2f} groups {row['groups']:3d} (no reorder {row['groups_no_reorder']:3d})  "
                  f"dense {row['dense_ms']:7.3f}  sparse {row['sparse_ms']:7.3f}  no-reorder {row['no_reorder_ms']:7.3f}  "
                  f"csr {row['csr_ms']:7.3f} ms  x{row['speedup_vs_dense']:.2f} vs dense, x{row['speedup_vs_csr']:.2f} vs csr",
                  flush=True)

    at_goal = [r for r in latency if abs(r["sparsity"] - 0.75) < 1e-9]
    goal = {
        "rows": len(at_goal),
        "at_least_2x_faster_than_dense": sum(r["speedup_vs_dense"] >= 2.0 for r in at_goal),
        "smaller_than_csr": sum(r["ours_bytes"] < r["csr_bytes"] for r in at_goal),
        "min_speedup_vs_dense": min((r["speedup_vs_dense"] for r in at_goal), default=None),
    }
    print(f"goal at 75%: {goal['at_least_2x_faster_than_dense']}/{goal['rows']} shapes >= 2x faster than dense "
          f"(min x{goal['min_speedup_vs_dense']}), {goal['smaller_than_csr']}/{goal['rows']} smaller than CSR")
    write_json(args.json, {
        "threads": args.threads, "rounds": args.rounds, "patterns": PATTERNS,
        "storage": storage, "latency": latency, "goal_75": goal,
    })
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
