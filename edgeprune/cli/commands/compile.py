"""``edgeprune compile``: a checkpoint directory, ONNX or TFLite file -> a compiled artifact directory."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edgeprune.cli.commands.args import input_shape, sparse_fraction


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("compile", help="compile a checkpoint, ONNX or TFLite model with TVM")
    parser.add_argument("src", type=Path, help="checkpoint directory, ONNX or TFLite file")
    parser.add_argument("--target", default="host", help="compilation target, see 'edgeprune targets' (default: host)")
    parser.add_argument("--targets-file", type=Path, help="TOML or JSON file of extra targets (also: $EDGEPRUNE_TARGETS)")
    parser.add_argument("--input-shape", type=input_shape,
                        help="static input shape N,C,H,W; N,H,W,C for TFLite (default: the source's)")
    parser.add_argument("--tuning-log", type=Path,
                        help="tuning log from 'edgeprune tune': each workload's best record is used, defaults elsewhere")
    parser.add_argument("--device", help="use only tuning records measured on this device (local or rpc://HOST:PORT/KEY)")
    parser.add_argument("--sparse", type=sparse_fraction, metavar="auto|FRACTION",
                        help="convs with at least this fraction of zero weights (auto: 0.5) get the grouped "
                             "column-sparse kernel where it measures faster here; meta.json records each choice")
    parser.add_argument("--at-commit", metavar="REV",
                        help="compile with edgeprune as of commit REV of this checkout (a SHA, branch, tag, HEAD~1): "
                             "the OLD build for 'edgeprune bench NEW --against OLD'")
    parser.add_argument("--out", type=Path, required=True, help="artifact directory to write")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from edgeprune.base.errors import EdgepruneError
    from edgeprune.compiler import compile
    from edgeprune.compiler.artifact import read_meta

    if args.at_commit is not None:
        return _compile_at_commit(args)

    configs, device_key, target, log_records = None, None, None, []
    if args.tuning_log is not None:
        from edgeprune.compiler.targets import resolve_target
        from edgeprune.compiler.tuner.log import configs_of, read_log
        from edgeprune.device.spec import DeviceSpec

        device_key = DeviceSpec.parse(args.device).tuning_key if args.device else None
        target = resolve_target(args.target, args.targets_file)
        log_records = read_log(args.tuning_log).records
        configs = configs_of(log_records, target, device_key)
        if not configs:
            print(f"{args.tuning_log}: no record for target {args.target!r}"
                  f"{f' on {device_key!r}' if device_key else ''}; compiling with default schedules")
    elif args.device:
        raise EdgepruneError("--device selects tuning records; it needs --tuning-log")
    out = compile(args.src, target=args.target, tuning_configs=configs, out=args.out, input_shape=args.input_shape,
                  targets_file=args.targets_file, sparse=args.sparse)
    meta = read_meta(out)
    rules: dict[str, int] = {}
    for record in meta.schedules:
        rules[record["rule"]] = rules.get(record["rule"], 0) + 1
    shapes = ", ".join(f"{t.name} {list(t.shape)}{f' {t.layout}' if t.layout else ''}" for t in meta.inputs)
    per_rule = ", ".join(f"{n} {rule}" for rule, n in sorted(rules.items()))
    tuned = sum(1 for record in meta.schedules if record["tuned"])
    tuned_note = f"; {tuned} tuned from {args.tuning_log}" if args.tuning_log is not None else ""
    sparse_note = ""
    if meta.sparse is not None:
        chosen = sum(1 for c in meta.sparse if c["chosen"] == "sparse")
        sparse_note = f"; {chosen} of {len(meta.sparse)} sparse-enough convs run sparse"
    print(f"wrote {out} ({shapes}; {len(meta.schedules)} kernels: {per_rule}{tuned_note}{sparse_note}; "
          f"{meta.compile_seconds:.1f} s)")
    if args.tuning_log is not None:
        _warn_untried_defaults(args.tuning_log, log_records, meta.schedules, target, device_key)
    return 0


def _forwarded(args: argparse.Namespace) -> list[str]:
    """``args`` as ``edgeprune compile`` arguments, without ``--at-commit``."""
    argv = [str(args.src), "--target", args.target, "--out", str(args.out)]
    for flag, value in (("--targets-file", args.targets_file), ("--tuning-log", args.tuning_log),
                        ("--device", args.device), ("--sparse", args.sparse)):
        if value is not None:
            argv += [flag, str(value)]
    if args.input_shape is not None:
        argv += ["--input-shape", ",".join(str(d) for d in args.input_shape)]
    return argv


def _compile_at_commit(args: argparse.Namespace) -> int:
    """Run that commit's ``edgeprune compile`` in a child process, then stamp the commit into meta.json.

    The child imports the commit's package (``base.provenance.export_commit``) with the
    installed dependencies; ``-P`` keeps the current directory, which may be this checkout,
    from shadowing it. Its output and its one-line errors are the user's.
    """
    import json
    import os
    import subprocess
    import tempfile

    from edgeprune.base.fileio import write_json
    from edgeprune.base.provenance import export_commit, resolve_commit
    from edgeprune.compiler.artifact import META_FILE

    sha = resolve_commit(args.at_commit)
    print(f"compiling with edgeprune at {sha[:12]} ({args.at_commit})", flush=True)
    with tempfile.TemporaryDirectory(prefix="edgeprune-at-") as tmp:
        path = os.pathsep.join(p for p in (str(export_commit(sha, Path(tmp))), os.environ.get("PYTHONPATH")) if p)
        code = subprocess.run([sys.executable, "-P", "-m", "edgeprune", "compile", *_forwarded(args)],
                              env=dict(os.environ, PYTHONPATH=path)).returncode
    if code != 0:
        return code
    meta_path = args.out / META_FILE
    meta = json.loads(meta_path.read_text())
    write_json(meta_path, {**meta, "git_commit": sha})  # the child ran outside any checkout: it knew none
    return 0


def _warn_untried_defaults(log: Path, records: list, schedules: list[dict], target: dict, device_key: str | None) -> None:
    from edgeprune.compiler.tuner.log import untried_defaults

    stale = sorted(set(untried_defaults(records, schedules, target, device_key)))
    if stale:
        shown = ", ".join(stale[:3]) + (f" and {len(stale) - 3} more" if len(stale) > 3 else "")
        print(f"warning: {log}: {len(stale)} tuned workload(s) were searched before edgeprune's default schedule for "
              f"them changed, and may now be slower than it: {shown}; re-tune them "
              f"('edgeprune tune ... --workloads KEY')", file=sys.stderr)
