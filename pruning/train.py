"""Supervised training of a segmentation model, as in the seed paper's section 5.2.

SGD with momentum 0.9 and the "poly" schedule ``lr * (1 - iter / total) ** 0.9``; cross
entropy on logits upsampled to the label size, ignoring label 255. Every
``checkpoint_interval`` iterations the whole training state goes to ``OUT/last.pt``, from
which ``resume=True`` continues exactly: the batch of iteration ``i`` is a pure function of
(seed, i), and so is its dropout, so a resumed run computes what an uninterrupted one would. Under
``torchrun`` each process trains on its own slice of every global batch
(DistributedDataParallel, gloo), and rank 0 alone writes files.
"""

from __future__ import annotations

import dataclasses
import math
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, Sampler

import edgeprune
from edgeprune.base.errors import EdgepruneError, first_line
from edgeprune.base.fileio import atomic_path
from edgeprune.base.interrupt import deferred_interrupt
from edgeprune.base.progress import Progress
from edgeprune.pruning import distributed
from edgeprune.pruning.checkpoint import ArchInfo, save_checkpoint
from edgeprune.pruning.data import build_dataset
from edgeprune.pruning.evaluate import evaluate, upsample_logits
from edgeprune.pruning.macs import count_cost
from edgeprune.pruning.models import build_model

STATE_FILE = "last.pt"


@dataclass
class TrainConfig:
    model: str
    data: str
    out: Path
    iters: int = 1000
    batch_size: int = 8
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    poly_power: float = 0.9
    crop_size: tuple[int, int] | None = None
    input_size: tuple[int, int] | None = None
    eval_interval: int = 0
    checkpoint_interval: int = 100
    val_images: int | None = None
    workers: int = 1
    seed: int = 0
    resume: bool = False
    progress_interval_s: float = 10.0
    extra_report: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        obj = dataclasses.asdict(self)
        obj["out"] = str(self.out)
        return obj


class BatchPlan:
    """Which dataset items each rank reads at each iteration; a pure function of (seed, iteration).

    Epoch ``e`` is a seeded permutation of the dataset cut into global batches of
    ``batch_size * world_size`` items (the tail that does not fill a batch is dropped);
    rank ``r`` takes its contiguous ``batch_size`` slice of each.
    """

    def __init__(self, num_items: int, batch_size: int, world_size: int, rank: int, seed: int) -> None:
        self.batch_size = batch_size
        self.world_size = world_size
        self.rank = rank
        self.seed = seed
        self.num_items = num_items
        self.steps_per_epoch = num_items // (batch_size * world_size)
        self._cached_epoch = -1
        self._perm: list[int] = []

    def items(self, iteration: int) -> list[tuple[int, int]]:
        """(item index, epoch) pairs of this rank's batch at ``iteration``."""
        epoch, step = divmod(iteration, self.steps_per_epoch)
        if epoch != self._cached_epoch:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = torch.randperm(self.num_items, generator=generator).tolist()
            self._cached_epoch = epoch
        start = (step * self.world_size + self.rank) * self.batch_size
        return [(i, epoch) for i in self._perm[start : start + self.batch_size]]


class PlanSampler(Sampler[list[tuple[int, int]]]):
    def __init__(self, plan: BatchPlan, start: int, stop: int) -> None:
        self.plan, self.start, self.stop = plan, start, stop

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for iteration in range(self.start, self.stop):
            yield self.plan.items(iteration)

    def __len__(self) -> int:
        return self.stop - self.start


class EpochIndexed(Dataset):
    """Reads ``(index, epoch)`` keys so augmentation randomness follows the epoch, also in workers."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, epoch = key
        self.dataset.set_epoch(epoch)
        return self.dataset[index]

    def __len__(self) -> int:
        return len(self.dataset)


def train_loader(dataset: Dataset, plan: BatchPlan, start: int, stop: int, workers: int) -> DataLoader:
    """Batches of iterations ``start..stop-1`` of ``plan``."""
    return DataLoader(EpochIndexed(dataset), batch_sampler=PlanSampler(plan, start, stop), num_workers=workers,
                      worker_init_fn=_ignore_sigint)


def _ignore_sigint(_worker_id: int) -> None:
    # Ctrl-C reaches the whole process group; the main process finishes its step and saves,
    # which it cannot do if the loader's workers have died of the same signal.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def poly_lr(base_lr: float, iteration: int, total: int, power: float) -> float:
    return base_lr * (1.0 - iteration / total) ** power


def segmentation_loss(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int) -> torch.Tensor:
    return F.cross_entropy(upsample_logits(logits, labels.shape[-2:]), labels, ignore_index=ignore_index)


def check_output_classes(model: nn.Module, sample: torch.Tensor, num_classes: int, model_name: str) -> None:
    """A user model must predict one channel per dataset class; say so before training starts."""
    model.eval()
    with torch.no_grad():
        out = model(sample.unsqueeze(0))
    model.train()
    if not isinstance(out, torch.Tensor) or out.dim() != 4:
        raise EdgepruneError(f"model {model_name}: forward must return NCHW logits, got {type(out).__name__}")
    if out.shape[1] != num_classes:
        raise EdgepruneError(
            f"model {model_name}: outputs {out.shape[1]} channels but the dataset has {num_classes} classes"
        )


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Train, evaluate and write the checkpoint directory ``cfg.out``; returns the report."""
    world = distributed.init_world()
    try:
        return _train(cfg, world)
    finally:
        distributed.shutdown()


def _train(cfg: TrainConfig, world: distributed.World) -> dict[str, Any]:
    out = Path(cfg.out)
    state_path = out / STATE_FILE
    if cfg.iters <= 0:
        raise EdgepruneError(f"--iters must be positive, got {cfg.iters}")
    if cfg.resume and not state_path.is_file():
        raise EdgepruneError(f"{state_path}: no training state to resume from")
    if not cfg.resume and state_path.exists():
        raise EdgepruneError(f"{out}: already holds a training run; pass --resume to continue it or pick another --out")

    torch.manual_seed(cfg.seed)
    train_set = build_dataset(cfg.data, split="train", crop_size=cfg.crop_size, seed=cfg.seed)
    val_set = build_dataset(cfg.data, split="val", crop_size=cfg.input_size, seed=cfg.seed)
    info = train_set.info
    model = build_model(cfg.model, num_classes=info.num_classes)
    image, _ = val_set[0]
    check_output_classes(model, image, info.num_classes, cfg.model)
    input_shape = [1, 3, *image.shape[-2:]]
    if len(train_set) < cfg.batch_size * world.size:
        raise EdgepruneError(
            f"{cfg.data}: {len(train_set)} training images, fewer than one global batch "
            f"({cfg.batch_size} x {world.size} processes)"
        )

    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    start, history = 0, []
    if cfg.resume:
        start, history = _load_state(state_path, cfg, model, optimizer)
        if start >= cfg.iters:
            raise EdgepruneError(f"{state_path}: this run already finished all {cfg.iters} iterations")
    ddp_model = DistributedDataParallel(model) if world.size > 1 else model

    plan = BatchPlan(len(train_set), cfg.batch_size, world.size, world.rank, cfg.seed)
    loader = train_loader(train_set, plan, start, cfg.iters, cfg.workers)
    eval_interval = cfg.eval_interval or max(1, cfg.iters // 4)
    progress = Progress(cfg.iters, "train", initial=start, interval_s=cfg.progress_interval_s, enabled=world.is_main)
    if world.is_main:
        progress.write(
            f"train {cfg.model} on {cfg.data}: {len(train_set)} train / {len(val_set)} val images, "
            f"{info.num_classes} classes, {cfg.iters} iterations of {cfg.batch_size} x {world.size}"
        )
    started = time.monotonic()
    iteration = start
    smoothed = history[-1]["loss"] if history else math.nan
    model.train()
    with deferred_interrupt() as interrupt:
        for images, labels in loader:
            # Dropout and any other randomness of this step depend on (seed, iteration, rank)
            # alone, which is what makes a resumed run identical to an uninterrupted one.
            torch.manual_seed((cfg.seed * 1_000_003 + iteration) * world.size + world.rank)
            lr = poly_lr(cfg.lr, iteration, cfg.iters, cfg.poly_power)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss = segmentation_loss(ddp_model(images), labels, info.ignore_index)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            iteration += 1
            value = float(loss.detach())
            if not math.isfinite(value):
                raise EdgepruneError(f"loss became {value} at iteration {iteration}; lower --lr (now {cfg.lr})")
            smoothed = value if math.isnan(smoothed) else 0.9 * smoothed + 0.1 * value
            progress.update(1, loss=smoothed, lr=lr)
            entry: dict[str, Any] = {"iteration": iteration, "loss": smoothed}
            if iteration % eval_interval == 0 or iteration == cfg.iters:
                matrix = evaluate(model, val_set, info.num_classes, info.ignore_index, limit=cfg.val_images,
                                  rank=world.rank, world_size=world.size)
                entry["miou"] = matrix.miou()
                progress.write(f"iteration {iteration}: loss {smoothed:.4f}, val mIoU {100 * entry['miou']:.2f}%")
            history.append(entry)
            if interrupt.requested:
                _save_state(state_path, cfg, model, optimizer, iteration, history, world)
                progress.close()
                raise KeyboardInterrupt
            if iteration % cfg.checkpoint_interval == 0 and iteration < cfg.iters:
                _save_state(state_path, cfg, model, optimizer, iteration, history, world)
    progress.close()

    _check_replicas_agree(model)
    final = next(h for h in reversed(history) if "miou" in h)
    cost = count_cost(model, tuple(input_shape))
    report = {
        "model": cfg.model,
        "data": cfg.data,
        "iterations": cfg.iters,
        "batch_size": cfg.batch_size,
        "world_size": world.size,
        "params": cost.params,
        "macs": cost.macs,
        "input_shape": input_shape,
        "miou": final["miou"],
        "per_class_iou": [None if math.isnan(v) else v for v in matrix.iou().tolist()],
        "pixel_accuracy": matrix.pixel_accuracy(),
        "final_loss": smoothed,
        "history": history,
        "train_seconds": time.monotonic() - started,
        "config": cfg.to_json(),
        "versions": {"edgeprune": edgeprune.__version__, "torch": torch.__version__},
        **cfg.extra_report,
    }
    if world.is_main:
        arch = ArchInfo(
            model=cfg.model,
            num_classes=info.num_classes,
            input_shape=input_shape,
            mean=list(info.mean),
            std=list(info.std),
            config=getattr(model, "edgeprune_config", {}),
            class_names=list(info.class_names),
        )
        save_checkpoint(out, model, arch, report)
        _save_state(state_path, cfg, model, optimizer, iteration, history, world)
    distributed.barrier()
    return report


def _save_state(path: Path, cfg: TrainConfig, model: nn.Module, optimizer: torch.optim.Optimizer,
                iteration: int, history: list[dict[str, Any]], world: distributed.World) -> None:
    if not world.is_main:
        return
    state = {
        "iteration": iteration,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "history": history,
        "config": cfg.to_json(),
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _load_state(path: Path, cfg: TrainConfig, model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[int, list]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise EdgepruneError(f"{path}: cannot be read (truncated or corrupt?): {exc}") from exc
    saved = state.get("config", {}) if isinstance(state, dict) else {}
    for key in ("model", "data", "iters", "batch_size", "seed"):
        if saved.get(key) != getattr(cfg, key):
            raise EdgepruneError(
                f"{path}: was written with {key}={saved.get(key)!r}, not {getattr(cfg, key)!r}; "
                "resume with the same settings"
            )
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
    except (KeyError, RuntimeError, ValueError) as exc:
        raise EdgepruneError(f"{path}: does not fit model {cfg.model}: {first_line(exc)}") from exc
    return int(state["iteration"]), list(state["history"])


def _check_replicas_agree(model: nn.Module) -> None:
    """After data-parallel training every rank must hold the same weights; fail loudly if not."""
    if not torch.distributed.is_initialized():
        return
    checksum = torch.stack([p.detach().double().sum() for p in model.parameters()]).sum()
    spread = torch.stack([checksum, -checksum])
    torch.distributed.all_reduce(spread, op=torch.distributed.ReduceOp.MAX)
    if float(spread[0] + spread[1]) > 1e-6 * max(1.0, abs(float(checksum))):
        raise RuntimeError("data-parallel replicas diverged: their weights differ after training")
