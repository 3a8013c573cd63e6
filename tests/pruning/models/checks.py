"""Checks every built-in model must pass: fx tracing, torch.export, ONNX, a training step."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
import torch.nn.functional as F
from torch import nn


def assert_fx_matches_eager(model: nn.Module, x: torch.Tensor) -> None:
    model.eval()
    traced = torch.fx.symbolic_trace(model)
    with torch.no_grad():
        torch.testing.assert_close(traced(x), model(x), rtol=0, atol=0)


def assert_export_matches_eager(model: nn.Module, x: torch.Tensor) -> None:
    model.eval()
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(x), model(x), rtol=0, atol=1e-6)


def assert_onnx_matches(model: nn.Module, x: torch.Tensor, path: Path) -> None:
    """Legacy (TorchScript) exporter, opset 17; ONNX Runtime within 1e-4 of PyTorch."""
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (x,), str(path), opset_version=17, input_names=["input"], output_names=["logits"], dynamo=False
        )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(["logits"], {"input": x.numpy()})
    with torch.no_grad():
        want = model(x).numpy()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)


def assert_trains(model: nn.Module, x: torch.Tensor, num_classes: int) -> None:
    """One SGD step on upsampled logits: finite loss and a gradient for every parameter."""
    model.train()
    logits = model(x)
    target = torch.randint(0, num_classes, (x.shape[0], *x.shape[-2:]))
    loss = F.cross_entropy(F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False), target)
    assert torch.isfinite(loss)
    loss.backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not no_grad, f"parameters without gradient: {no_grad}"


def param_count_m(model: nn.Module) -> float:
    return sum(p.numel() for p in model.parameters()) / 1e6
