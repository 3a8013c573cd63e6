"""Prune a segmentation model to a MACs target and write the sliced checkpoint directory.

``bilevel`` is the seed paper's method: soft masks with an STE, the MACs regularizer, and
alternating weight / mask steps with the implicit gradient of Eq. 15 (``implicit=False`` for
the paper's ablation), under a target that ramps down from the full model (``pruning.ramp``)
and a bound on the channels one mask step may prune. The search takes ``search_fraction`` of
the iterations; the masks are then fitted to the target, the model is sliced, and the rest of
the weight updates train the sliced model (what training under the final masks computes,
cheaper), so no separate fine-tune is needed.

The baselines select their channels at once and spend every weight update on fine-tuning
the sliced model: ``magnitude``, ``taylor`` and ``bn-scale`` are Torch-Pruning's criteria
through its own pruner (``pruning.torch_pruning_baseline``), ``uniform`` one width factor
(``pruning.uniform``). Every method draws the same number of weight updates from one
schedule (``pruning.weight_recipe``: the checkpoint's training recipe at a fraction of its lr).

All end with a physical slice, a check that the sliced model computes what the masked one
does, a re-estimate of the BatchNorm statistics (``pruning.batchnorm``; no weight changes),
and the checkpoint directory with the pruning policy in ``arch.json``. The pruning ``seed``
orders the batches; the data (synthetic scenes included) is the checkpoint's own, whatever
the seed, so runs with different seeds are evaluated on the same validation images.
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
from edgeprune.pruning.bilevel import BilevelPruner, BilevelSettings, calibrate_lambda
from edgeprune.pruning.checkpoint import ARCH_FILE, ArchInfo, Checkpoint, load_checkpoint, save_checkpoint
from edgeprune.pruning.coupling import ChannelGraph, analyze, check_layer_names, default_prunable
from edgeprune.pruning.data import build_dataset
from edgeprune.pruning.evaluate import evaluate
from edgeprune.pruning.fine_tune import fine_tune
from edgeprune.pruning.fit_target import fit_to_target
from edgeprune.pruning.macs import count_cost
from edgeprune.pruning.masks import ChannelMasks
from edgeprune.pruning.models import build_model
from edgeprune.pruning.ramp import TargetRamp
from edgeprune.pruning.regularizer import MacsModel, MacsRegularizer
from edgeprune.pruning.slicing import policy_to_json, slice_model
from edgeprune.pruning.torch_pruning_baseline import CRITERIA, torch_pruning_keep
from edgeprune.pruning.train import BatchPlan, segmentation_loss, train_loader
from edgeprune.pruning.uniform import uniform_keep
from edgeprune.pruning.weight_recipe import WeightRecipe, weight_recipe

METHODS = ("bilevel", *CRITERIA, "uniform")
POLICY_FILE = "policy.json"
SLICE_TOLERANCE = 1e-5
TAYLOR_BATCHES = 4  # batches whose loss gradients Torch-Pruning's Taylor criterion reads
CALIBRATION_BATCHES = 4  # batches that set lambda from rho


@dataclass
class PruneConfig:
    model: str
    data: str
    out: Path
    target_gmacs: float
    method: Literal["bilevel", "magnitude", "taylor", "bn-scale", "uniform"] = "bilevel"
    from_dir: Path | None = None
    iters: int = 300
    weight_steps: int = 3
    batch_size: int = 8
    lr: float | None = None  # None: DEFAULT_LR_FRACTION x the checkpoint's training lr
    mask_lr: float = 2.0
    beta: float = 0.01
    lam: float | None = None  # None: calibrated from rho
    rho: float = 1.0
    implicit: bool = True
    push: Literal["even", "macs"] = "even"
    search_fraction: float = 0.5
    ramp_fraction: float = 0.6
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

    @property
    def weight_updates(self) -> int:
        """Every method's budget: what ``iters`` bi-level iterations of ``weight_steps`` make."""
        return self.iters * self.weight_steps

    @property
    def search_iters(self) -> int:
        return max(1, round(self.search_fraction * self.iters))


def prune(cfg: PruneConfig) -> dict[str, Any]:
    """Run the whole pruning job; returns the report also written to ``OUT/report.json``."""
    if cfg.iters <= 0:
        raise EdgepruneError(f"--iters must be positive, got {cfg.iters}")
    if cfg.method not in METHODS:
        raise EdgepruneError(f"unknown --method {cfg.method!r} (one of {', '.join(METHODS)})")
    if (Path(cfg.out) / ARCH_FILE).exists():
        raise EdgepruneError(f"{cfg.out}: already holds a checkpoint; pick another --out (prune never overwrites one)")
    ckpt = _unpruned_checkpoint(cfg.from_dir) if cfg.from_dir is not None else None
    trained_with = _trained_with(ckpt)
    # MACs are counted, and the pruned model exported, at the size the checkpoint was made for.
    input_size = cfg.input_size or (tuple(ckpt.arch.input_shape[-2:]) if ckpt else None)
    data_seed = int((trained_with or {}).get("seed", 0))
    torch.manual_seed(cfg.seed)
    crop_size = cfg.crop_size or _size((trained_with or {}).get("crop_size"))
    train_set = build_dataset(cfg.data, split="train", crop_size=crop_size, seed=data_seed)
    val_set = build_dataset(cfg.data, split="val", crop_size=input_size, seed=data_seed)
    info = train_set.info
    if ckpt is None:
        model, model_name = build_model(cfg.model, num_classes=info.num_classes), cfg.model
    elif ckpt.arch.num_classes != info.num_classes:
        raise EdgepruneError(f"{cfg.from_dir}: has {ckpt.arch.num_classes} classes but {cfg.data} has {info.num_classes}")
    else:
        model, model_name = ckpt.model.train(), ckpt.arch.model
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
    recipe = weight_recipe(trained_with, cfg.lr)

    def loss_fn(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return segmentation_loss(logits, labels, info.ignore_index)

    started = time.monotonic()
    search: dict[str, Any] = {}
    if cfg.method == "bilevel":
        keep, search = _bilevel(cfg, model, graph, macs_model, target, train_set, recipe, loss_fn)
        tuned_from = cfg.search_iters * cfg.weight_steps
    elif cfg.method == "uniform":
        keep, tuned_from = uniform_keep(model, graph, macs_model, target), 0
    else:
        batches = train_loader(train_set, BatchPlan(len(train_set), cfg.batch_size, 1, 0, cfg.seed + 2), 0,
                               TAYLOR_BATCHES, cfg.workers)
        keep = torch_pruning_keep(model, graph, torch.zeros(input_shape), cfg.method, macs_model, target,
                                  batches, loss_fn)
        tuned_from = 0
    sliced = _slice_checked(model, graph, keep, input_shape)
    fine_tune(sliced, train_set, recipe, range(tuned_from, cfg.weight_updates), cfg.weight_updates,
              batch_size=cfg.batch_size, seed=cfg.seed, ignore_index=info.ignore_index, workers=cfg.workers,
              label=f"train the sliced model ({cfg.method})", history=cfg.history,
              progress_interval_s=cfg.progress_interval_s)
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
        "data_seed": data_seed,
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
        "weight_updates": cfg.weight_updates,
        "weight_recipe": recipe.to_json(),
        **search,
        "bn_recalibration_batches": recalibrated,
        "groups": {str(g): [int(k.sum()), int(k.numel())] for g, k in keep.items()},
        "seconds": seconds,
        "history": cfg.history,
        "settings": {"beta": cfg.beta, "push": cfg.push, "rho": cfg.rho, "lam": cfg.lam, "lr": cfg.lr,
                     "mask_lr": cfg.mask_lr, "search_fraction": cfg.search_fraction, "ramp_fraction": cfg.ramp_fraction,
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


def _unpruned_checkpoint(path: Path) -> Checkpoint:
    ckpt = load_checkpoint(path)
    if ckpt.arch.policy:
        raise EdgepruneError(f"{path}: is already pruned; prune from the unpruned checkpoint")
    return ckpt


def _trained_with(ckpt: Checkpoint | None) -> dict[str, Any] | None:
    """The ``TrainConfig`` fields the checkpoint was trained with (None: not trained by edgeprune)."""
    config = ckpt.report.get("config") if ckpt is not None else None
    return dict(config) if isinstance(config, dict) else None


def _size(value: Any) -> tuple[int, int] | None:
    return (int(value[0]), int(value[1])) if isinstance(value, (list, tuple)) and len(value) == 2 else None


def _prunable_filter(prefixes: list[str]):
    def prunable(name: str) -> bool:
        return any(name == p or name.startswith(p + ".") for p in prefixes)

    return prunable


def _bilevel(cfg: PruneConfig, model: nn.Module, graph: ChannelGraph, macs_model: MacsModel, target: float,
             train_set, recipe: WeightRecipe, loss_fn) -> tuple[dict[int, torch.Tensor], dict[str, Any]]:
    """The search: ``search_iters`` iterations of weight steps and one mask step, under a ramped target."""
    masks = ChannelMasks(graph).attach(model)
    regularizer = MacsRegularizer(macs_model, target, beta=cfg.beta)
    ramp = TargetRamp(macs_model.full_macs(), target, max(1, round(cfg.ramp_fraction * cfg.search_iters)))
    prunable_channels = sum(macs_model.sizes[g] for g in macs_model.prunable)
    settings = BilevelSettings(weight_lr=recipe.lr, weight_decay=recipe.weight_decay, momentum=recipe.momentum,
                               mask_lr=cfg.mask_lr, lam=cfg.lam or 0.0, implicit=cfg.implicit, push=cfg.push,
                               max_flips=ramp.flip_budget(prunable_channels))
    pruner = BilevelPruner(model, masks, regularizer, loss_fn, settings)
    steps_per_iter = cfg.weight_steps + 1
    plan = BatchPlan(len(train_set), cfg.batch_size, 1, 0, cfg.seed)
    batches = iter(train_loader(train_set, plan, 0, cfg.search_iters * steps_per_iter, cfg.workers))
    model.train()
    if cfg.implicit and cfg.lam is None:
        calibration = train_loader(train_set, BatchPlan(len(train_set), cfg.batch_size, 1, 0, cfg.seed + 3), 0,
                                   CALIBRATION_BATCHES, cfg.workers)
        settings.lam = calibrate_lambda(pruner, calibration, cfg.rho)
    label = f"prune ({'bilevel' if cfg.implicit else 'bilevel, no implicit'})"
    with Progress(cfg.search_iters, label, interval_s=cfg.progress_interval_s) as progress:
        for iteration in range(cfg.search_iters):
            regularizer.retarget(ramp.at(iteration))
            ce = math.nan
            for step in range(cfg.weight_steps):
                pruner.set_lr(recipe.lr_at(iteration * cfg.weight_steps + step, cfg.weight_updates), cfg.mask_lr)
                ce = pruner.weight_step(*next(batches))
            figures = pruner.mask_step(*next(batches))
            with torch.no_grad():
                macs = float(macs_model.macs({g: float(c) for g, c in masks.kept_counts().items()}))
            if not math.isfinite(ce):
                raise EdgepruneError(f"loss became {ce} at iteration {iteration + 1}; lower --lr (now {recipe.lr:g})")
            cfg.history.append({"iteration": iteration + 1, "ce": ce, "reg": figures["reg"], "gmacs": macs / 1e9,
                                "target_gmacs": regularizer.target / 1e9})
            progress.update(1, ce=ce, gmacs=macs / 1e9, target=regularizer.target / 1e9)
    masks.detach()
    scores = {g: masks.soft[str(g)].detach().clone() for g in masks.group_indices}
    learned = {g: s > masks.tau for g, s in scores.items()}
    keep = fit_to_target(scores, learned, macs_model, target)
    flipped = sum(int((keep[g] != learned[g]).sum()) for g in keep)
    return keep, {"channels_flipped_by_fit": flipped, "lam": settings.lam, "max_flips": settings.max_flips,
                  "search_iterations": cfg.search_iters, "ramp_iterations": ramp.ramp_iters}


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
