"""``edgeprune bench``: latency statistics and FPS of a compiled artifact."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeprune.commands.args import positive_int


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="time an artifact: latency statistics and FPS")
    parser.add_argument("artifact", type=Path, help="artifact directory written by 'edgeprune compile'")
    parser.add_argument("--device", default="local", help="where to run (default: local)")
    parser.add_argument("--runs", type=positive_int, default=50, help="timed runs (default 50)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed runs first (default 5)")
    parser.add_argument("--threads", type=positive_int, help="CPU threads (default: TVM_NUM_THREADS or all cores)")
    parser.add_argument("--json", type=Path, help="also write the statistics here")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from device.runners import runner_for
    from edgeprune.fileio import write_json

    result = runner_for(args.device).measure(args.artifact, runs=args.runs, warmup=args.warmup, threads=args.threads)
    s = result.stats
    print(f"{args.artifact} on {result.device}, {result.threads} threads, {s.runs} runs")
    print(f"{'first':>9} {'mean':>9} {'std':>8} {'min':>9} {'median':>9} {'p90':>9} {'p95':>9} {'max':>9} {'FPS':>8}")
    print(f"{s.first_ms:>9.3f} {s.mean_ms:>9.3f} {s.std_ms:>8.3f} {s.min_ms:>9.3f} {s.median_ms:>9.3f} "
          f"{s.p90_ms:>9.3f} {s.p95_ms:>9.3f} {s.max_ms:>9.3f} {s.fps:>8.1f}   (ms)")
    if args.json:
        write_json(args.json, result.to_json())
        print(f"wrote {args.json}")
    return 0
