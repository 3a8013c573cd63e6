"""``edgeprune train``: train a segmentation model and write a checkpoint directory."""

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
    size_hw,
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model; writes a checkpoint directory",
        description="Train with SGD (momentum 0.9) and the poly schedule. Run under "
        "`torchrun --nproc-per-node N -m edgeprune train ...` for data-parallel training.",
    )
    parser.add_argument("--model", required=True, help="built-in name (see `edgeprune models`) or package.module:function")
    parser.add_argument("--data", default="synthetic",
                        help="synthetic | ade20k:PATH | cityscapes:PATH | voc:PATH (default: synthetic)")
    parser.add_argument("--out", required=True, type=Path, help="checkpoint directory to write")
    parser.add_argument("--iters", type=ITERATIONS, default=1000)
    parser.add_argument("--batch-size", type=BATCH, default=8, help="per process (default 8)")
    parser.add_argument("--lr", type=float_in(0.0, 10.0, low_open=True), default=0.01)
    parser.add_argument("--weight-decay", type=float_in(0.0, 1.0), default=1e-4)
    parser.add_argument("--crop-size", type=size_hw, help="training crop, H or HxW (default: the dataset's)")
    parser.add_argument("--input-size", type=size_hw, help="eval/export size, H or HxW (default: the dataset's)")
    parser.add_argument("--eval-interval", type=ITERATIONS, help="iterations between evaluations (default: iters/4)")
    parser.add_argument("--checkpoint-interval", type=ITERATIONS, default=100)
    parser.add_argument("--val-images", type=IMAGES, help="evaluate on the first N val images only")
    parser.add_argument("--workers", type=WORKERS, default=1, help="data loader processes (default 1)")
    parser.add_argument("--seed", type=SEED, default=0)
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last state")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from edgeprune.pruning.train import TrainConfig, train

    cfg = TrainConfig(
        model=args.model,
        data=args.data,
        out=args.out,
        iters=args.iters,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        crop_size=args.crop_size,
        input_size=args.input_size,
        eval_interval=args.eval_interval or 0,
        checkpoint_interval=args.checkpoint_interval,
        val_images=args.val_images,
        workers=args.workers,
        seed=args.seed,
        resume=args.resume,
    )
    try:
        report = train(cfg)
    except KeyboardInterrupt:
        print(f"edgeprune: training interrupted; continue with the same command and --resume (state in {args.out})")
        raise
    print(
        f"done: mIoU {100 * report['miou']:.2f}%, {report['params'] / 1e6:.2f}M params, "
        f"{report['macs'] / 1e9:.3f} GMACs at {report['input_shape']}; checkpoint in {args.out}"
    )
    return 0
