"""``edgeprune compile``: a checkpoint directory or ONNX file -> a compiled artifact directory."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def input_shape(text: str) -> tuple[int, ...]:
    """``1,3,H,W``: four positive integers."""
    try:
        dims = tuple(int(p) for p in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N,C,H,W, got {text!r}") from None
    if len(dims) != 4 or min(dims) <= 0:
        raise argparse.ArgumentTypeError(f"expected four positive integers N,C,H,W, got {text!r}")
    return dims


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("compile", help="compile a checkpoint or ONNX model with TVM")
    parser.add_argument("src", type=Path, help="checkpoint directory or ONNX file")
    parser.add_argument("--target", default="host", help="compilation target (default: host)")
    parser.add_argument("--input-shape", type=input_shape, help="static input shape N,C,H,W (default: the source's)")
    parser.add_argument("--tuning", type=Path, help="JSON file mapping workload keys to schedule configs")
    parser.add_argument("--out", type=Path, required=True, help="artifact directory to write")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from compiler import compile
    from compiler.artifact import read_meta
    from edgeprune.errors import EdgepruneError

    configs = None
    if args.tuning is not None:
        try:
            configs = json.loads(args.tuning.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise EdgepruneError(f"{args.tuning}: cannot read tuning configs ({exc})") from exc
        if not isinstance(configs, dict) or not all(isinstance(v, dict) for v in configs.values()):
            raise EdgepruneError(f"{args.tuning}: expected a JSON object of workload key -> config object")
    out = compile(args.src, target=args.target, tuning_configs=configs, out=args.out, input_shape=args.input_shape)
    meta = read_meta(out)
    rules: dict[str, int] = {}
    for record in meta.schedules:
        rules[record["rule"]] = rules.get(record["rule"], 0) + 1
    shapes = ", ".join(f"{t.name} {list(t.shape)}" for t in meta.inputs)
    per_rule = ", ".join(f"{n} {rule}" for rule, n in sorted(rules.items()))
    print(f"wrote {out} ({shapes}; {len(meta.schedules)} kernels: {per_rule}; {meta.compile_seconds:.1f} s)")
    return 0
