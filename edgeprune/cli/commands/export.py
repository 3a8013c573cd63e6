"""``edgeprune export``: regenerate a checkpoint's ONNX file from its weights."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeprune.cli.commands.args import output_file, size_hw


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("export", help="regenerate model.onnx of a checkpoint directory")
    parser.add_argument("checkpoint", type=Path, help="checkpoint directory")
    parser.add_argument("--input-size", type=size_hw,
                        help="export at H or HxW instead of arch.json's input shape (arch.json is updated to match)")
    parser.add_argument("--out", type=output_file, help="ONNX file to write (default: CHECKPOINT/model.onnx)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from edgeprune.base.fileio import write_json
    from edgeprune.pruning.checkpoint import ARCH_FILE, ONNX_FILE, load_checkpoint
    from edgeprune.pruning.onnx_export import export_onnx

    ckpt = load_checkpoint(args.checkpoint)
    shape = list(ckpt.arch.input_shape)
    if args.input_size:
        shape[2:] = args.input_size
    out = args.out or args.checkpoint / ONNX_FILE
    export_onnx(ckpt.model, shape, out)
    if args.out is None and shape != ckpt.arch.input_shape:
        ckpt.arch.input_shape = shape
        write_json(args.checkpoint / ARCH_FILE, ckpt.arch.to_json())
    print(f"wrote {out} (input {shape})")
    return 0
