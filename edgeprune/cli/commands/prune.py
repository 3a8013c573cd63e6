"""``edgeprune prune``: prune a model to a MACs target and write the sliced checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeprune.cli.commands.args import (
    BATCH,
    IMAGES,
    ITERATIONS,
    SEED,
    WORKERS,
    float_in,
    int_in,
    size_hw,
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prune",
        help="prune to a MACs target (bi-level, or a Torch-Pruning / uniform baseline) and slice",
        description="Pruning parameterization with bi-level optimization (soft masks, STE, MACs "
        "regularizer, implicit gradients), or a baseline (Torch-Pruning's criteria, one uniform width); then a physical slice "
        "into a smaller dense model that computes what the masked model computes.",
    )
    parser.add_argument("--model", help="built-in name or package.module:function (default: the --from checkpoint's)")
    parser.add_argument("--from", dest="from_dir", type=Path, help="trained checkpoint directory to start from")
    parser.add_argument("--data", default="synthetic", help="synthetic | ade20k:PATH | cityscapes:PATH | voc:PATH")
    parser.add_argument("--target-gmacs", type=float_in(0.0, 1e6, low_open=True), required=True,
                        help="MACs target in GMACs at the eval size")
    parser.add_argument("--method", choices=("bilevel", "magnitude", "taylor", "bn-scale", "uniform"), default="bilevel",
                        help="bilevel (the seed paper's), Torch-Pruning's magnitude | taylor | bn-scale criteria, or "
                        "uniform (one width factor); the baselines spend every weight update on fine-tuning")
    parser.add_argument("--no-implicit", action="store_true", help="drop the implicit-gradient term of Eq. 15")
    parser.add_argument("--iters", type=ITERATIONS, default=300, help="outer iterations (default 300)")
    parser.add_argument("--weight-steps", type=int_in(1, 1000), default=3,
                        help="weight steps per mask step (default 3); every method gets iters x weight-steps updates")
    parser.add_argument("--batch-size", type=BATCH, default=8)
    parser.add_argument("--lr", type=float_in(0.0, 10.0, low_open=True),
                        help="weight learning rate, poly-decayed over the updates (default: 0.3 x the lr the "
                        "--from checkpoint was trained with; its weight decay is kept)")
    parser.add_argument("--mask-lr", type=float_in(0.0, 1e4, low_open=True), default=2.0,
                        help="soft mask learning rate (default 2, momentum 0.9)")
    parser.add_argument("--beta", type=float_in(0.0, 1e6), default=0.01, help="MACs regularizer weight (default 0.01)")
    parser.add_argument("--push", choices=("even", "macs"), default="even",
                        help="regularizer push per channel: even (the mean for every channel, the loss picks which go; "
                        "default) or macs (the paper's Eq. 5, by each channel's cost)")
    parser.add_argument("--rho", type=float_in(0.0, 1e4), default=1.0,
                        help="weight of Eq. 15's implicit term: lambda is set so that the term's mean is rho times "
                        "the cross-entropy mask gradient's on the first batches (default 1)")
    parser.add_argument("--lam", type=float_in(0.0, 1e6, low_open=True),
                        help="lambda of Eq. 15 in the loss's own units, instead of --rho")
    parser.add_argument("--search-fraction", type=float_in(0.0, 1.0, low_open=True), default=0.5,
                        help="share of the iterations that search masks; the rest train the sliced model (default 0.5)")
    parser.add_argument("--ramp-fraction", type=float_in(0.0, 1.0, low_open=True), default=0.6,
                        help="share of the search over which the MACs target ramps down to --target-gmacs (default 0.6)")
    parser.add_argument("--layers", nargs="+", help="prune only these modules (qualified names or prefixes)")
    parser.add_argument("--min-keep", type=float_in(0.0, 1.0), default=0.2,
                        help="never prune a channel group below this fraction of its width (default 0.2)")
    parser.add_argument("--crop-size", type=size_hw)
    parser.add_argument("--input-size", type=size_hw, help="eval/export size (MACs are counted here)")
    parser.add_argument("--val-images", type=IMAGES)
    parser.add_argument("--workers", type=WORKERS, default=1, help="data loader processes (default 1)")
    parser.add_argument("--seed", type=SEED, default=0)
    parser.add_argument("--out", type=Path, required=True)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from edgeprune.base.errors import EdgepruneError
    from edgeprune.pruning.prune import PruneConfig, prune

    if not args.model and not args.from_dir:
        raise EdgepruneError("give --model or --from (a trained checkpoint directory)")
    cfg = PruneConfig(
        model=args.model or "",
        data=args.data,
        out=args.out,
        target_gmacs=args.target_gmacs,
        method=args.method,
        from_dir=args.from_dir,
        iters=args.iters,
        weight_steps=args.weight_steps,
        batch_size=args.batch_size,
        lr=args.lr,
        mask_lr=args.mask_lr,
        beta=args.beta,
        lam=args.lam,
        rho=args.rho,
        push=args.push,
        search_fraction=args.search_fraction,
        ramp_fraction=args.ramp_fraction,
        implicit=not args.no_implicit,
        layers=args.layers,
        min_keep=args.min_keep,
        crop_size=args.crop_size,
        input_size=args.input_size,
        val_images=args.val_images,
        workers=args.workers,
        seed=args.seed,
    )
    report = prune(cfg)
    print(
        f"{report['model']}: {report['macs_before'] / 1e9:.3f} -> {report['macs'] / 1e9:.3f} GMACs "
        f"(target {report['target_macs'] / 1e9:.3f}, {100 * report['target_error']:+.2f}%), "
        f"{report['params_before'] / 1e6:.2f}M -> {report['params'] / 1e6:.2f}M params, "
        f"mIoU {100 * report['miou']:.2f}%; sliced checkpoint in {args.out}"
    )
    return 0
