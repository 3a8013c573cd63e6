"""Convs on ragged output rows: TVM's legalization vs rows widened to whole vectors.

    python benchmarks/conv_row_padding.py [--rounds 10] [--threads N] [--json ...]

The kxk and strided convs of classification backbones at 224x224 end on 7-, 14- and 28-column
maps. Each workload below is legalized twice, as ``compile`` does for this CPU
(``passes.pad_conv_width``: rows widened to whole vectors, cropped in the kernel) and as TVM
does (ragged rows), then scheduled with the ``conv2d`` rule's default config and timed as a
kernel alone in alternating rounds. Prints both medians and the paired speedup beside the
anchor (1.0: no gain), and GFLOP/s of useful work (the cropped columns do not count).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import tvm
from tvm import relax, s_tir

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edgeprune.base.fileio import write_json  # noqa: E402
from edgeprune.base.timing import alternate_timers, medians, paired_ratios  # noqa: E402
from edgeprune.compiler.passes import FuseEpilogue  # noqa: E402
from edgeprune.compiler.passes.pad_conv_width import row_extra  # noqa: E402
from edgeprune.compiler.schedules.cpu import cpu_rules  # noqa: E402
from edgeprune.compiler.schedules.registry import match  # noqa: E402
from edgeprune.compiler.target import hardware_of, host_cores, make_target  # noqa: E402
from edgeprune.compiler.targets import resolve_target  # noqa: E402
from edgeprune.compiler.threads import set_num_threads  # noqa: E402

DEFAULT_JSON = REPO / "benchmarks" / "results" / "conv_row_padding.json"
# (channels in, out, kernel, stride, input side): ResNet-18's stages and their downsampling convs.
WORKLOADS = [
    (512, 512, 3, 1, 7), (256, 512, 3, 2, 14), (256, 512, 1, 2, 14),
    (256, 256, 3, 1, 14), (128, 256, 3, 2, 28), (128, 128, 3, 1, 28), (64, 128, 3, 2, 56),
]


def conv_kernel(cin: int, cout: int, k: int, stride: int, side: int, target) -> tvm.tirx.PrimFunc:
    """conv + bias + relu on a ``side`` x ``side`` map, legalized and fused under ``target`` (None: TVM's way)."""
    rng = np.random.default_rng(0)
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, cin, side, side), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            weight = relax.const(rng.standard_normal((cout, cin, k, k)).astype("float32"))
            bias = relax.const(rng.standard_normal((1, cout, 1, 1)).astype("float32"))
            y = relax.op.nn.conv2d(x, weight, strides=stride, padding=k // 2)
            out = bb.emit_output(relax.op.nn.relu(relax.op.add(y, bias)))
        bb.emit_func_output(out)
    if target is None:
        mod = FuseEpilogue()(bb.get())
    else:
        with target:
            mod = FuseEpilogue()(bb.get())
    funcs = [f for f in mod.functions.values() if isinstance(f, tvm.tirx.PrimFunc)]
    assert len(funcs) == 1
    return funcs[0]


def scheduled(func: tvm.tirx.PrimFunc, rules, target):
    rule, workload = match(rules, func)
    sch = s_tir.Schedule(func)
    rule.apply(sch, workload, rule.default(workload))
    lib = tvm.compile(tvm.IRModule({"main": sch.mod["main"].with_attr("global_symbol", "main")}), target)
    return lib, workload, func


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=host_cores())
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()
    os.environ["TVM_NUM_THREADS"] = str(args.threads)
    set_num_threads(args.threads)
    target = make_target(resolve_target("host"))
    hw = hardware_of(target)
    rules = cpu_rules(hw)
    print(f"{target.attrs.get('mcpu', '')}: {hw.vector_lanes} float lanes, {args.threads} threads, "
          f"{args.rounds} alternating rounds; anchor: TVM's legalization (speedup 1.0)")
    print(f"  {'conv':<28} {'ragged ms':>9} {'widened ms':>10} {'speedup':>8} {'GFLOP/s':>15}")
    rows = []
    for cin, cout, k, stride, side in WORKLOADS:
        ow = (side + 2 * (k // 2) - k) // stride + 1
        libs = {}
        for name, where in (("ragged", None), ("widened", target)):
            libs[name] = scheduled(conv_kernel(cin, cout, k, stride, side, where), rules, target)
        rng = np.random.default_rng(1)
        params = [[int(d) for d in p.shape] for p in libs["ragged"][2].params]  # data, weight, bias, output
        inputs = [tvm.runtime.tensor(rng.standard_normal(shape).astype("float32")) for shape in params[:-1]]
        outs = {name: tvm.runtime.tensor(np.zeros(params[-1], dtype="float32")) for name in libs}
        evaluators = {name: lib.mod.time_evaluator("main", tvm.cpu(), number=5, repeat=1)
                      for name, (lib, _, _) in libs.items()}
        timers = {name: (lambda e=evaluators[name], o=outs[name]: e(*inputs, o).mean) for name in libs}
        times = alternate_timers(timers, args.rounds, warmup=1)
        np.testing.assert_allclose(outs["widened"].numpy(), outs["ragged"].numpy(), rtol=1e-4, atol=1e-4)
        ms = {name: 1e3 * t for name, t in medians(times).items()}
        speedup = 1.0 / paired_ratios(times, "ragged", 1)["widened"]
        flops = 2 * cin * cout * k * k * ow * ow
        label = f"{cin}->{cout} {k}x{k}/{stride} to {ow}x{ow}"
        gflops = {name: flops / (ms[name] * 1e6) for name in ms}
        print(f"  {label:<28} {ms['ragged']:>9.3f} {ms['widened']:>10.3f} {speedup:>7.2f}x "
              f"{gflops['ragged']:>6.1f} -> {gflops['widened']:>5.1f}", flush=True)
        rows.append({"conv": label, "ow": ow, "widened_to": ow + row_extra(ow, hw.vector_lanes, depthwise=False),
                     "median_ms": ms, "speedup": speedup, "useful_gflops": gflops,
                     "workloads": {name: libs[name][1].key for name in libs}})
    write_json(args.json, {"benchmark": "conv_row_padding", "mcpu": str(target.attrs.get("mcpu", "")),
                           "vector_lanes": hw.vector_lanes, "threads": args.threads, "rounds": args.rounds,
                           "anchor": "ragged (TVM's legalization) = 1.0", "workloads": rows})
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
