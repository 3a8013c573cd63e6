"""Third-party architectures (``benchmarks/zoo_designs``) compile as a user brings them and match
ONNX Runtime: a fast subset of ``benchmarks/zoo.py``, at a small input size."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from benchmarks.zoo import export_onnx, fallbacks
from benchmarks.zoo_designs import ZOO
from edgeprune import compiler
from edgeprune.compiler.artifact import load_artifact

# One of each family of op patterns: an FPN's nearest upsamplings added and bilinear ones
# concatenated over hard-swish/SE encoders, LR-ASPP's pooled sigmoid gate, ShuffleNet's split and
# shuffle, Linknet's transposed convs, EfficientNet's SiLU and sigmoid-gated squeeze-excite.
NETS = ("fpn-cat-mobilenetv3", "lraspp-mobilenetv3", "shufflenetv2", "linknet-resnet18", "efficientnet-b0")


@pytest.mark.parametrize("name", NETS)
def test_zoo_net_compiles_without_fallback_and_matches_onnxruntime(name, tmp_path):
    torch.manual_seed(0)
    model = ZOO[name].builder().eval()
    x = np.random.default_rng(0).standard_normal((1, 3, 96, 96)).astype(np.float32)
    onnx_path = tmp_path / f"{name}.onnx"
    export_onnx(model, torch.from_numpy(x), onnx_path)
    artifact = compiler.compile(onnx_path, out=tmp_path / "art")
    assert fallbacks(artifact) == []
    expected = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    got = load_artifact(artifact)(x)
    assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()
