"""Checkpoints of small models for the compiler tests, and the references they are compared with.

Numbers are compared with a float64 PyTorch run of the same weights (float32 PyTorch and ONNX
Runtime are themselves ~1e-5..1e-4 off it on these nets).
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgeprune.pruning.checkpoint import ArchInfo, load_checkpoint, save_checkpoint
from edgeprune.pruning.models import build_model

USER_MODEL = "tests.compiler.nets:build"
USER_SHAPE = [1, 3, 45, 61]  # odd sizes on purpose


def randomize_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BN non-trivial statistics, so that folding them is actually tested."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.rand(c, generator=gen) - 0.5)
            m.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(c, generator=gen) + 0.5)
            m.bias.data.copy_(torch.rand(c, generator=gen) - 0.5)
    return model


def make_checkpoint(out: Path, model_name: str, input_shape: list[int], seed: int = 0, random_bn: bool = True) -> Path:
    torch.manual_seed(seed)
    model = build_model(model_name)
    if random_bn:
        randomize_batchnorm(model, seed)
    model.eval()
    num_classes = model.edgeprune_config.get("num_classes") or 5
    arch = ArchInfo(model=model_name, num_classes=num_classes, input_shape=input_shape, mean=[0.0] * 3, std=[1.0] * 3)
    return save_checkpoint(out, model, arch, {})


def reference(ckpt: Path, x: np.ndarray) -> np.ndarray:
    """The checkpoint's model evaluated in float64."""
    model = copy.deepcopy(load_checkpoint(ckpt).model).double().eval()
    with torch.no_grad():
        return model(torch.from_numpy(x.astype(np.float64))).numpy()


def sample_input(shape, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
