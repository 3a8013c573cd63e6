"""``edgeprune demo``: train, prune, slice, compile and benchmark on embedded defaults."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeprune.cli.commands.args import ITERATIONS, THREADS, float_in


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="the whole job on built-in defaults: train, prune, compile, benchmark",
        description="Trains a TopFormer on the synthetic scenes, prunes it to a MACs target with the "
        "bi-level method, slices it, compiles both models for this CPU and times them against ONNX "
        "Runtime. Run it again with the same --out to resume after an interruption.",
    )
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="working directory (default runs/demo)")
    parser.add_argument("--train-iters", type=ITERATIONS, default=400, help="training iterations (default 400)")
    parser.add_argument("--prune-iters", type=ITERATIONS, default=60, help="bi-level iterations (default 60)")
    parser.add_argument("--macs-fraction", type=float_in(0.0, 1.0, low_open=True), default=0.6, help="MACs target as a fraction (default 0.6)")
    parser.add_argument("--threads", type=THREADS, help="CPU threads for timing (default: all cores)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from edgeprune.demo import DemoConfig, run_demo, summary_table

    cfg = DemoConfig(out=args.out, train_iters=args.train_iters, prune_iters=args.prune_iters,
                     macs_fraction=args.macs_fraction, threads=args.threads)
    results = run_demo(cfg)
    print()
    print(summary_table(results))
    return 0
