"""``edgeprune targets``: the compilation targets, their TVM targets, limits and notes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("targets", help="list the compilation targets (built-in and your own)")
    parser.add_argument("--targets-file", type=Path, help="TOML or JSON file of extra targets (also: $EDGEPRUNE_TARGETS)")
    parser.add_argument("--json", action="store_true", help="print the targets as JSON, TVM target dicts included")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from edgeprune.compiler.targets import load_targets, target_files

    targets = load_targets(target_files([args.targets_file] if args.targets_file else []))
    if args.json:
        print(json.dumps([t.to_json() for t in targets.values()], indent=2))
        return 0
    print(f"{'name':<20} {'device':<7} {'triple':<24} {'threads/block':>13} {'local mem':>10} {'texture':>11}  notes")
    for t in targets.values():
        lim = t.limits
        threads = str(lim.get("max_threads_per_block", "-"))
        shared = f"{lim['max_shared_memory_per_block'] // 1024} KiB" if "max_shared_memory_per_block" in lim else "-"
        texture = (f"{lim['texture_spatial_limit']}x{lim.get('texture_depth_limit', '-')}"
                   if "texture_spatial_limit" in lim else "-")
        source = "" if t.source == "built-in" else f" [{t.source}]"
        print(f"{t.name:<20} {t.device_type:<7} {t.triple:<24} {threads:>13} {shared:>10} {texture:>11}  {t.notes}{source}")
    return 0
