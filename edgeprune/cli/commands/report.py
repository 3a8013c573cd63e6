"""``edgeprune report``: a self-contained HTML page of latency history, kernels, pruning and outputs."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeprune.cli.commands.args import THREADS, check_threads_here, int_in, output_file


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("report", help="write an HTML report: latency history, kernels, pruning, outputs")
    parser.add_argument("--out", type=output_file, required=True, help="the HTML file to write")
    parser.add_argument("--history", type=Path,
                        help="results history (default $XDG_CACHE_HOME/edgeprune/history.sqlite, if it exists)")
    parser.add_argument("--checkpoint", type=Path, help="pruned checkpoint directory: pruning summary and outputs")
    parser.add_argument("--unpruned", type=Path, help="the checkpoint it was pruned from: widths, mIoU and outputs before")
    parser.add_argument("--artifact", type=Path, help="compiled artifact to profile kernel by kernel (on this machine)")
    parser.add_argument("--data", default="synthetic", help="dataset whose val images to segment (default synthetic)")
    parser.add_argument("--images", type=int_in(0, 64), default=4, help="images to segment (default 4; 0 for none)")
    parser.add_argument("--threads", type=THREADS, help="CPU threads for the profile (default: as 'bench')")
    parser.add_argument("--table", type=Path, action="append", default=[],
                        help="JSON {title, columns, rows, note} to add as a table (repeatable)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from edgeprune.device.history import default_history_path
    from edgeprune.report import ReportInputs, read_table, write_report

    check_threads_here(args.threads)
    history = args.history
    if history is None and default_history_path().is_file():
        history = default_history_path()
    inputs = ReportInputs(
        history=history, checkpoint=args.checkpoint, unpruned=args.unpruned, artifact=args.artifact,
        data=args.data, images=args.images, threads=args.threads, tables=[read_table(t) for t in args.table],
    )
    out = write_report(args.out, inputs)
    print(f"wrote {out}")
    return 0
