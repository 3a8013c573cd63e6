"""``edgeprune check``: run a GPU artifact's OpenCL kernels here and compare them with the CPU."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeprune.cli.commands.args import SEED, output_file


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check", help="run a GPU artifact's OpenCL kernels on this machine (PoCL) against the CPU"
    )
    parser.add_argument("artifact", type=Path, help="artifact directory compiled for a GPU target")
    parser.add_argument("--seed", type=SEED, default=0, help="seed of the random inputs (default 0)")
    parser.add_argument("--json", type=output_file, help="also write the per-kernel report here")
    parser.add_argument("--all", action="store_true", help="list every kernel, not only those that are not ok")
    parser.add_argument("--func", action="append", help="check only this function's kernels (repeatable)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from edgeprune.base.fileio import write_json
    from edgeprune.base.progress import Progress
    from edgeprune.compiler.artifact import read_meta
    from edgeprune.device.opencl_check import check_artifact

    meta = read_meta(args.artifact)
    total = len(args.func) if args.func else (meta.opencl or {}).get("funcs", 0)
    with Progress(total, "check") as progress:
        report = check_artifact(args.artifact, seed=args.seed, progress=progress.update, funcs=args.func)
    shown = report.results if args.all else [r for r in report.results if r.status != "ok"]
    if shown:
        print(f"{'kernel':<60} {'status':<12} {'max error':>10} {'PoCL ms':>9}  detail")
    for r in shown:
        err = f"{r.max_error:.2e}" if r.max_error is not None else "-"
        ms = f"{r.pocl_ms:.3f}" if r.pocl_ms is not None else "-"
        print(f"{r.kernel:<60} {r.status:<12} {err:>10} {ms:>9}  {r.detail}")
    counts = ", ".join(f"{n} {status}" for status, n in sorted(report.counts().items()))
    total_ms = sum(r.pocl_ms or 0.0 for r in report.results)
    print(f"{args.artifact}: {len(report.results)} kernels: {counts}; kernel time {total_ms:.1f} ms on "
          f"{report.device} (not the phone's GPU); {report.seconds:.1f} s")
    if args.json:
        write_json(args.json, report.to_json())
        print(f"wrote {args.json}")
    return 0 if report.ok else 1
