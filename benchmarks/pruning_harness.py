"""What the pruning benchmarks share: one cached supernet, and pruning runs that resume.

Every arm of ``prune_ablation.py`` and every point of ``prune_recipe.py`` starts from the same
trained checkpoint (trained here once, to convergence, resumable: ``train`` continues from its
``last.pt``) and is evaluated by ``Harness.evaluate`` on one validation set built once, with
the checkpoint's own data seed. Finished runs are appended to ``WORK/runs.jsonl`` keyed by
their settings, so an interrupted benchmark picks up where it stopped and a rerun with more
seeds or arms only runs what is missing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeprune.pruning.checkpoint import load_checkpoint
from edgeprune.pruning.data import build_dataset
from edgeprune.pruning.evaluate import evaluate
from edgeprune.pruning.prune import PruneConfig, prune
from edgeprune.pruning.train import TrainConfig, train
from edgeprune.pruning.weight_recipe import weight_recipe

DEFAULT_WORK = Path(__file__).resolve().parent / ".cache" / "pruning"
# The supernet's modules, all prunable (``PruneConfig.layers``), as in the paper's Table A6:
# TopFormer's default prunable set, the token pyramid, cannot go below about half of the MACs.
WHOLE_NETWORK = ["tpm", "trans", "sim", "head"]


@dataclass(frozen=True)
class Supernet:
    """How the shared starting checkpoint is trained (converged on the synthetic scenes)."""

    model: str = "topformer-supernet"
    size: int = 128
    iters: int = 3000
    lr: float = 0.1
    batch_size: int = 8


def ensure_trained(work: Path, net: Supernet) -> Path:
    """The checkpoint of ``net`` under ``work``, trained (or its interrupted training resumed) if missing."""
    out = work / f"{net.model}-{net.size}-{net.iters}"
    if (out / "report.json").is_file():
        return out
    train(TrainConfig(model=net.model, data="synthetic", out=out, iters=net.iters, lr=net.lr,
                      batch_size=net.batch_size, crop_size=(net.size, net.size), input_size=(net.size, net.size),
                      resume=(out / "last.pt").is_file(), progress_interval_s=30))
    return out


class Harness:
    """Pruning runs from one checkpoint, evaluated on one validation set, cached by their settings."""

    def __init__(self, work: Path, checkpoint: Path, val_images: int | None) -> None:
        self.work = work
        self.checkpoint = checkpoint
        self.val_images = val_images
        start = load_checkpoint(checkpoint)
        self.arch = start.arch
        self.report = start.report
        size = tuple(start.arch.input_shape[-2:])
        data_seed = int(start.report.get("config", {}).get("seed", 0))
        self.val_set = build_dataset("synthetic", split="val", crop_size=size, seed=data_seed)
        self.unpruned_miou = self.evaluate(start.model)
        self.cache_path = work / "runs.jsonl"
        self.done: dict[str, dict[str, Any]] = {}
        if self.cache_path.is_file():
            for line in self.cache_path.read_text().splitlines():
                if line.strip():
                    run = json.loads(line)
                    self.done[run["key"]] = run

    def evaluate(self, model) -> float:
        return evaluate(model, self.val_set, self.arch.num_classes, limit=self.val_images).miou()

    def run(self, settings: dict[str, Any]) -> dict[str, Any]:
        """One pruning run with ``PruneConfig`` fields ``settings`` (``target_fraction`` of the
        unpruned MACs instead of ``target_gmacs``); from the cache when it already ran."""
        # The lr the run resolves to is part of its key: a change of the tied default is a new run.
        weight_lr = weight_recipe(self.report.get("config"), settings.get("lr")).lr
        key = json.dumps({"from": str(self.checkpoint), "val_images": self.val_images, "weight_lr": weight_lr,
                          **settings}, sort_keys=True)
        if key in self.done:
            return self.done[key]
        fields = dict(settings)
        fraction = fields.pop("target_fraction")
        # One folder per process and setting: benchmarks sharing the cache may run side by side.
        out = self.work / "runs" / f"run-{os.getpid()}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
        size = tuple(self.arch.input_shape[-2:])
        report = prune(PruneConfig(model="", data="synthetic", out=out, from_dir=self.checkpoint,
                                   target_gmacs=fraction * self.report["macs"] / 1e9, crop_size=size,
                                   input_size=size, val_images=self.val_images, progress_interval_s=60, **fields))
        pruned = load_checkpoint(out)
        run = {"key": key, "settings": settings, "miou": self.evaluate(pruned.model), "macs": report["macs"],
               "macs_fraction": report["macs"] / report["macs_before"], "seconds": report["seconds"],
               "lam": report.get("lam"), "groups": report["groups"], "from": str(self.checkpoint)}
        shutil.rmtree(out, ignore_errors=True)
        with self.cache_path.open("a") as f:
            f.write(json.dumps(run) + "\n")
        self.done[key] = run
        return run
