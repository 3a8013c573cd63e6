"""``edgeprune tune``: search schedule configs for every distinct workload of a model.

Each measured candidate is appended to the tuning log at once; Ctrl-C stops after the
current batch, and the same command with ``--resume`` continues from the log without
measuring anything twice. ``edgeprune compile --tuning-log LOG`` uses the result.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from edgeprune.cli.commands.args import SEED, THREADS, float_in, input_shape, int_in, sparse_fraction


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("tune", help="auto-tune the schedules of a model on a device")
    parser.add_argument("src", type=Path, help="checkpoint directory, ONNX or TFLite file")
    parser.add_argument("--target", default="host", help="compilation target (default: host)")
    parser.add_argument("--targets-file", type=Path, help="TOML or JSON file of extra targets (also: $EDGEPRUNE_TARGETS)")
    parser.add_argument("--device", default="local", help="where to measure: local or rpc://HOST:PORT/KEY (default: local)")
    parser.add_argument("--trials", type=int_in(1, 10_000_000), required=True,
                        help="measured candidates in all, the default of each workload included")
    parser.add_argument("--workloads", help="comma-separated op names (conv2d_1x1, ...), rule names or workload keys; default: all")
    parser.add_argument("--heaviest", type=int_in(1, 100_000), help="tune only the N workloads with the most FLOPs in the model")
    parser.add_argument("--sparse", type=sparse_fraction, metavar="auto|FRACTION",
                        help="also tune grouped sparse kernels for convs with at least this zero fraction ('auto': 0.5)")
    parser.add_argument("--log", type=Path, required=True, help="tuning log (JSON lines) to append to")
    parser.add_argument("--resume", action="store_true", help="continue the search recorded in --log")
    parser.add_argument("--strategy", choices=("ga", "random"), default="ga", help="search strategy (default: ga)")
    parser.add_argument("--seed", type=SEED, default=0, help="seed of the search (default 0)")
    parser.add_argument("--builders", type=int_in(1, 256), help="parallel build processes (default: all cores)")
    parser.add_argument("--timeout", type=float_in(0.0, 86_400.0, low_open=True), default=60.0, help="seconds per build and per measurement (default 60)")
    parser.add_argument("--repeat", type=int_in(1, 10_000), default=5, help="timed repeats per candidate (default 5)")
    parser.add_argument("--min-repeat-ms", type=int_in(1, 600_000), default=20, help="minimum length of one repeat (default 20)")
    parser.add_argument("--cold", action="store_true",
                        help="time each candidate from cold caches (all but its input flushed), one call per repeat")
    parser.add_argument("--confirm-top", type=int_in(0, 100), default=3,
                        help="re-time the default and this many best candidates per workload side by side at the end (default 3; 0: off)")
    parser.add_argument("--confirm-rounds", type=int_in(1, 1000), default=3, help="alternating rounds of that re-timing (default 3)")
    parser.add_argument("--threads", type=THREADS, help="CPU threads when measuring (default: TVM_NUM_THREADS or all cores)")
    parser.add_argument("--input-shape", type=input_shape, help="static input shape N,C,H,W (default: the source's)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from edgeprune.base.interrupt import deferred_interrupt
    from edgeprune.compiler.tuner.tune import TuneJob, tune_model
    from edgeprune.device.runners.kernels import TimingPlan

    job = TuneJob(
        src=args.src, log=args.log, trials=args.trials, target=args.target, targets_file=args.targets_file,
        device=args.device, heaviest=args.heaviest, resume=args.resume, strategy=args.strategy, seed=args.seed, builders=args.builders,
        workloads=[p.strip() for p in args.workloads.split(",") if p.strip()] if args.workloads else None,
        timeout=args.timeout, plan=TimingPlan(repeat=args.repeat, min_repeat_ms=args.min_repeat_ms, threads=args.threads, cold=args.cold),
        confirm_top=args.confirm_top, confirm_rounds=args.confirm_rounds, input_shape=args.input_shape,
        sparse=args.sparse,
    )
    with deferred_interrupt() as flag:
        report = tune_model(job, should_stop=lambda: flag.requested)
    if report.torn_lines:
        print(f"{args.log}: skipped {report.torn_lines} torn line(s) (a run was killed mid-write)")
    print(format_table(report.results))
    for r in report.results:
        if r.failures:
            print(f"{r.task.key}: {r.failures} of {r.measured} candidates failed, first: {r.first_error}")
    if report.interrupted:
        print(f"interrupted: every measured candidate is in {args.log}; rerun with --resume to continue")
        raise KeyboardInterrupt
    print(f"wrote {args.log}; use it with: edgeprune compile {args.src} --target {args.target} --tuning-log {args.log} --out ART")
    return 0


def format_table(results: list) -> str:
    """Per workload: calls, trials, default vs tuned latency and GFLOP/s; the model estimate."""

    lines = [f"{'workload':<44} {'calls':>5} {'trials':>6} {'default ms':>10} {'tuned ms':>9} {'speedup':>7} {'GFLOP/s':>15}"]
    total_default = total_tuned = 0.0
    for r in sorted(results, key=lambda r: -r.weight):
        flops = r.task.flops
        gflops = f"{flops / r.default_ms / 1e6:.1f} -> {flops / r.best_ms / 1e6:.1f}" if flops and math.isfinite(r.best_ms) else "-"
        speedup = f"{r.default_ms / r.best_ms:.2f}x" if math.isfinite(r.best_ms) and math.isfinite(r.default_ms) else "-"
        lines.append(f"{r.task.label[:44]:<44} {r.task.calls:>5} {r.trials:>6} {r.default_ms:>10.4f} "
                     f"{r.best_ms:>9.4f} {speedup:>7} {gflops:>15}")
        if math.isfinite(r.best_ms) and math.isfinite(r.default_ms):
            total_default += r.default_ms * r.task.calls
            total_tuned += r.best_ms * r.task.calls
    if total_tuned > 0:
        lines.append(f"sum over calls (kernels timed alone): default {total_default:.3f} ms, tuned {total_tuned:.3f} ms "
                     f"({total_default / total_tuned:.2f}x)")
    lines.append("(ms: fastest timed repeat; for confirmed workloads the median of that over the side-by-side rounds)")
    return "\n".join(lines)
