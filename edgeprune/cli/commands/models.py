"""``edgeprune models``: the built-in models with their published size and cost."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="list the built-in models")
    parser.add_argument("--count", action="store_true", help="also count params/MACs here (slower)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from edgeprune.pruning.macs import count_cost
    from edgeprune.pruning.models import MODELS, build_model

    header = f"{'model':<20} {'classes':>7} {'input':>9} {'params (pub.)':>14} {'GMACs (pub.)':>13}"
    if args.count:
        header += f" {'params':>8} {'GMACs':>7}"
    print(header)
    for name, spec in MODELS.items():
        h, w = spec.input_hw
        pub = spec.published
        line = f"{name:<20} {spec.num_classes:>7} {f'{h}x{w}':>9} "
        line += f"{f'{pub.params_m:.2f}M':>14} {pub.gmacs:>13.2f}" if pub else f"{'-':>14} {'-':>13}"
        if args.count:
            cost = count_cost(build_model(name), (1, 3, h, w))
            line += f" {cost.params / 1e6:>7.2f}M {cost.macs / 1e9:>7.2f}"
        print(line)
    print("user models: --model package.module:function (returns an nn.Module; gets num_classes= if it takes it)")
    return 0
