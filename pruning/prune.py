"""Prune a segmentation model to a MACs target and write the sliced checkpoint directory.

``bilevel`` is the seed paper's method: soft masks with an STE, the MACs regularizer, and
alternating weight / mask steps with the implicit gradient of Eq. 15 (``implicit=False`` for
the paper's ablation). ``magnitude`` is the L1 filter-norm baseline, fine-tuned for the same
number of weight updates. Both end with the same greedy fit to the target (at most one
channel's MACs under it), a physical slice, a check that the sliced model computes what
the masked one does, a re-estimate of the BatchNorm statistics (``pruning.batchnorm``; no
weight changes), and the checkpoint directory with the pruning policy in ``arch.json``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

import edgeprune
from edgeprune.base.errors import EdgepruneError
from edgeprune.base.fileio import write_json
from edgeprune.base.progress import Progress
from edgeprune.pruning.batchnorm import recalibrate_batchnorm
from edgeprune.pruning.bilevel import BilevelPruner, BilevelSettings
from edgeprune.pruning.checkpoint import ARCH_FILE, ArchInfo, load_checkpoint, read_arch, save_checkpoint
from edgeprune.pruning.coupling import ChannelGraph, analyze, check_layer_names, default_prunable
from edgeprune.pruning.data import build_dataset
from edgeprune.pruning.evaluate import evaluate
from edgeprune.pruning.fit_target import fit_to_target
from edgeprune.pruning.macs import count_cost
from edgeprune.pruning.magnitude import l1_scores
from edgeprune.pruning.masks import ChannelMasks
from edgeprune.pruning.models import build_model
from edgeprune.pruning.regularizer import MacsModel, MacsRegularizer
from edgeprune.pruning.slicing import policy_to_json, slice_model
from edgeprune.pruning.train import BatchPlan, poly_lr, segmentation_loss, train_loader

POLICY_FILE = "policy.json"
SLICE_TOLERANCE = 1e-5


@dataclass
class PruneConfig:
    model: str
    data: str
    out: Path
    target_gmacs: float
    method: Literal["bilevel", "magnitude"] = "bilevel"
    from_dir: Path | None = None
    iters: int = 300
    weight_steps: int = 3
    batch_size: int = 8
    lr: float = 1e-4
    mask_lr: float = 2.0
    beta: float = 0.01
    lam: float = 0.1
    implicit: bool = True
    layers: list[str] | None = None
    min_keep: float = 0.2
    bn_batches: int = 25
    crop_size: tuple[int, int] | None = None
    input_size: tuple[int, int] | None = None
    val_images: int | None = None
    workers: int = 1
    seed: int = 0
    progress_interval_s: float = 10.0
    history: list[dict[str, Any]] = field(default_factory=list)


def prune(cfg: PruneConfig) -> dict[str, Any]:
    """Run the whole pruning job; returns the report also written to ``OUT/report.json``."""
    if cfg.iters <= 0:
        raise EdgepruneError(f"--iters must be positive, got {cfg.iters}")
    if (Path(cfg.out) / ARCH_FILE).exists():
        raise EdgepruneError(f"{cfg.out}: already holds a checkpoint; pick another --out (prune never overwrites one)")
    # MACs are counted, and the pruned model exported, at the size the checkpoint was made for.
    input_size = cfg.input_size
    if input_size is None and cfg.from_dir is not None:
        input_size = tuple(read_arch(cfg.from_dir).input_shape[-2:])
    torch.manual_seed(cfg.seed)
    train_set = build_dataset(cfg.data, split="train", crop_size=cfg.crop_size, seed=cfg.seed)
    val_set = build_dataset(cfg.data, split="val", crop_size=input_size, seed=cfg.seed)
    info = train_set.info
    model, model_name = _starting_model(cfg, info.num_classes)
    input_shape = [1, 3, *val_set[0][0].shape[-2:]]

    if cfg.layers:
        check_layer_names(model, cfg.layers)
    prunable = _prunable_filter(cfg.layers) if cfg.layers else default_prunable(model_name)
    graph = analyze(model, torch.zeros(input_shape), prunable)
    if not any(g.prunable for g in graph.groups):
        raise EdgepruneError(f"model {model_name}: no prunable conv channels (with the given --layers)")
    before = count_cost(model, tuple(input_shape))
    macs_model = MacsModel(graph, before.macs, cfg.min_keep)
    target = cfg.target_gmacs * 1e9
    macs_model.check_target(target)

    started = time.monotonic()
    if cfg.method == "bilevel":
        keep, flipped = _bilevel(cfg, model, graph, macs_model, target, train_set, info.ignore_index)
        sliced = _slice_checked(model, graph, keep, input_shape)
    elif cfg.method == "magnitude":
        scores = l1_scores(model, graph)
        whole = {g: torch.ones(n.numel(), dtype=torch.bool) for g, n in scores.items()}
        keep = fit_to_target(scores, whole, macs_model, target)
        flipped = 0
        sliced = _slice_checked(model, graph, keep, input_shape)
        _fine_tune(cfg, sliced, train_set, info.ignore_index)
    else:
        raise EdgepruneError(f"unknown --method {cfg.method!r} (bilevel or magnitude)")
    recalibrated = recalibrate_batchnorm(sliced, _images(cfg, train_set, cfg.bn_batches))
    seconds = time.monotonic() - started

    matrix = evaluate(sliced, val_set, info.num_classes, info.ignore_index, limit=cfg.val_images)
    after = count_cost(sliced, tuple(input_shape))
    policy = policy_to_json(graph, {g: torch.nonzero(k).flatten() for g, k in keep.items()})
    report = {
        "method": cfg.method,
        "implicit": cfg.implicit if cfg.method == "bilevel" else None,
        "model": model_name,
        "data": cfg.data,
        "from": str(cfg.from_dir) if cfg.from_dir else None,
        "target_macs": int(target),
        "macs_before": before.macs,
        "macs": after.macs,
        "target_error": (after.macs - target) / target,
        "params_before": before.params,
        "params": after.params,
        "miou": matrix.miou(),
        "pixel_accuracy": matrix.pixel_accuracy(),
        "input_shape": input_shape,
        "iterations": cfg.iters,
        "weight_steps": cfg.weight_steps,
        "channels_flipped_by_fit": flipped,
        "bn_recalibration_batches": recalibrated,
        "groups": {str(g): [int(k.sum()), int(k.numel())] for g, k in keep.items()},
        "seconds": seconds,
        "history": cfg.history,
        "settings": {"beta": cfg.beta, "lam": cfg.lam, "lr": cfg.lr, "mask_lr": cfg.mask_lr,
                     "batch_size": cfg.batch_size, "seed": cfg.seed, "layers": cfg.layers,
                     "min_keep": cfg.min_keep},
        "versions": {"edgeprune": edgeprune.__version__, "torch": torch.__version__},
    }
    arch = ArchInfo(
        model=model_name,
        num_classes=info.num_classes,
        input_shape=input_shape,
        mean=list(info.mean),
        std=list(info.std),
        config=getattr(model, "edgeprune_config", {}),
        class_names=list(info.class_names),
        policy=policy,
    )
    out = save_checkpoint(cfg.out, sliced, arch, report)
    write_json(out / POLICY_FILE, policy)
    return report


def _starting_model(cfg: PruneConfig, num_classes: int) -> tuple[nn.Module, str]:
    if cfg.from_dir is None:
        return build_model(cfg.model, num_classes=num_classes), cfg.model
    ckpt = load_checkpoint(cfg.from_dir)
    if ckpt.arch.policy:
        raise EdgepruneError(f"{cfg.from_dir}: is already pruned; prune from the unpruned checkpoint")
    if ckpt.arch.num_classes != num_classes:
        raise EdgepruneError(
            f"{cfg.from_dir}: has {ckpt.arch.num_classes} classes but {cfg.data} has {num_classes}"
        )
    ckpt.model.train()
    return ckpt.model, ckpt.arch.model


def _prunable_filter(prefixes: list[str]):
    def prunable(name: str) -> bool:
        return any(name == p or name.startswith(p + ".") for p in prefixes)

    return prunable


def _bilevel(cfg: PruneConfig, model: nn.Module, graph: ChannelGraph, macs_model: MacsModel, target: float,
             train_set, ignore_index: int) -> tuple[dict[int, torch.Tensor], int]:
    masks = ChannelMasks(graph).attach(model)
    regularizer = MacsRegularizer(macs_model, target, beta=cfg.beta)
    settings = BilevelSettings(weight_lr=cfg.lr, mask_lr=cfg.mask_lr, lam=cfg.lam,
                               weight_steps=cfg.weight_steps, implicit=cfg.implicit)

    def loss_fn(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return segmentation_loss(logits, labels, ignore_index)

    pruner = BilevelPruner(model, masks, regularizer, loss_fn, settings)
    steps_per_iter = cfg.weight_steps + 1
    plan = BatchPlan(len(train_set), cfg.batch_size, 1, 0, cfg.seed)
    batches = iter(train_loader(train_set, plan, 0, cfg.iters * steps_per_iter, cfg.workers))
    model.train()
    with Progress(cfg.iters, f"prune ({'bilevel' if cfg.implicit else 'bilevel, no implicit'})",
                  interval_s=cfg.progress_interval_s) as progress:
        for iteration in range(cfg.iters):
            scale = poly_lr(1.0, iteration, cfg.iters, 0.9)
            pruner.set_lr(cfg.lr * scale, cfg.mask_lr * scale)
            ce = math.nan
            for _ in range(cfg.weight_steps):
                ce = pruner.weight_step(*next(batches))
            figures = pruner.mask_step(*next(batches))
            with torch.no_grad():
                macs = float(macs_model.macs({g: float(c) for g, c in masks.kept_counts().items()}))
            if not math.isfinite(ce):
                raise EdgepruneError(f"loss became {ce} at iteration {iteration + 1}; lower --lr (now {cfg.lr})")
            cfg.history.append({"iteration": iteration + 1, "ce": ce, "reg": figures["reg"], "gmacs": macs / 1e9})
            progress.update(1, ce=ce, gmacs=macs / 1e9, target=target / 1e9)
    masks.detach()
    scores = {g: masks.soft[str(g)].detach().clone() for g in masks.group_indices}
    learned = {g: s > masks.tau for g, s in scores.items()}
    keep = fit_to_target(scores, learned, macs_model, target)
    flipped = sum(int((keep[g] != learned[g]).sum()) for g in keep)
    return keep, flipped


def _slice_checked(model: nn.Module, graph: ChannelGraph, keep: dict[int, torch.Tensor],
                   input_shape: list[int]) -> nn.Module:
    """Slice, and prove on a random input that the slice computes what the masked model computes.

    The comparison runs in float64: in float32 the sliced convs sum fewer terms in another
    order, and TopFormer's unscaled attention amplifies that rounding (up to 1e-2 at 512x512
    on untrained weights) although the slice is exact. The bound is 1e-5 times the output's
    scale where that exceeds 1: an untrained TopFormer in eval mode, with BatchNorm statistics
    still at their initial values, can output 1e14.
    """
    indices = {g: torch.nonzero(k).flatten() for g, k in keep.items()}
    sliced = slice_model(model, graph, indices).eval()
    masks = ChannelMasks(graph).double()
    with torch.no_grad():
        for g, k in keep.items():
            masks.soft[str(g)].copy_(k.float())
    masks.attach(model)
    was_training = model.training
    model.eval()
    try:
        x = torch.randn(input_shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        with torch.no_grad():
            reference = model.double()(x)
            error = float((reference - sliced.double()(x)).abs().max())
            bound = SLICE_TOLERANCE * max(1.0, float(reference.abs().max()))
    finally:
        masks.detach()
        model.float().train(was_training)
        sliced.float()
    if error > bound:
        raise RuntimeError(f"sliced model differs from the masked model by {error:.3g} (> {bound:.3g})")
    return sliced


def _images(cfg: PruneConfig, train_set, batches: int):
    """Training image batches, in an order of their own."""
    plan = BatchPlan(len(train_set), cfg.batch_size, 1, 0, cfg.seed + 1)  # another permutation
    for images, _ in train_loader(train_set, plan, 0, batches, cfg.workers):
        yield images


def _fine_tune(cfg: PruneConfig, model: nn.Module, train_set, ignore_index: int) -> None:
    """The baseline's fine-tuning: as many SGD weight updates as the bi-level run makes."""
    steps = cfg.iters * cfg.weight_steps
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, weight_decay=1e-4)
    plan = BatchPlan(len(train_set), cfg.batch_size, 1, 0, cfg.seed)
    model.train()
    with Progress(steps, "fine-tune (magnitude)", interval_s=cfg.progress_interval_s) as progress:
        for step, (images, labels) in enumerate(train_loader(train_set, plan, 0, steps, cfg.workers)):
            for group in optimizer.param_groups:
                group["lr"] = poly_lr(cfg.lr, step, steps, 0.9)
            loss = segmentation_loss(model(images), labels, ignore_index)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            cfg.history.append({"iteration": step + 1, "ce": float(loss.detach())})
            progress.update(1, ce=float(loss.detach()))
    model.eval()
