"""The built-in models compiled end to end at small inputs, against PyTorch and ONNX Runtime.

The reference is PyTorch in float64. Untrained TopFormers amplify float32 rounding (their
attention logits are unscaled), so on some inputs every float32 implementation, PyTorch's and
ONNX Runtime's included, lands more than 1e-4 from it; there the bar is ONNX Runtime's and
float32 PyTorch's own error.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from edgeprune import compiler
from edgeprune.compiler.artifact import META_FILE
from edgeprune.pruning.checkpoint import load_checkpoint
from tests.compiler.checkpoints import make_checkpoint, reference, sample_input

MODELS = {
    "topformer-tiny": [1, 3, 128, 128],
    "topformer-base": [1, 3, 128, 128],
    "deeplabv3plus-mbv2": [1, 3, 128, 256],
}


def float32_errors(ckpt, x: np.ndarray, expected: np.ndarray) -> tuple[float, float]:
    """Max abs error of ONNX Runtime and of float32 PyTorch against the float64 reference."""
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(ckpt / "model.onnx"), providers=["CPUExecutionProvider"])
    (ort_out,) = session.run(None, {"input": x})
    model = copy.deepcopy(load_checkpoint(ckpt).model).eval()
    with torch.no_grad():
        torch_out = model(torch.from_numpy(x)).numpy()
    return float(np.abs(ort_out - expected).max()), float(np.abs(torch_out - expected).max())


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_builtin_model_matches_pytorch_and_onnxruntime(tmp_path, name):
    ckpt = make_checkpoint(tmp_path / "ckpt", name, MODELS[name], random_bn=False)
    out = compiler.compile(ckpt, out=tmp_path / "art")
    meta = json.loads((out / META_FILE).read_text())
    assert not [s for s in meta["schedules"] if "fallback" in s]
    assert meta["compile_seconds"] < 60
    art = compiler.load_artifact(out)
    for seed in (0, 1):
        x = sample_input(MODELS[name], seed)
        expected = reference(ckpt, x)
        error = float(np.abs(art(x) - expected).max())
        ort_error, torch_error = float32_errors(ckpt, x, expected)
        assert error <= max(1e-4, 1.5 * max(ort_error, torch_error)), (error, ort_error, torch_error)


def test_conv_with_resized_side_inputs_keeps_its_conv_schedule(tmp_path):
    """Regression: at 64x64 TopFormer's injection modules fuse the resized global features into the
    local conv's epilogue as side inputs, and the conv1x1 rule gave up on them (generic schedule)."""
    shape = [1, 3, 64, 64]
    ckpt = make_checkpoint(tmp_path / "ckpt", "topformer-tiny", shape)
    out = compiler.compile(ckpt, out=tmp_path / "art")
    schedules = json.loads((out / META_FILE).read_text())["schedules"]
    # the pyramid ends at 1x1 maps, where depthwise and merged expand/depthwise kernels fell back
    assert not [s for s in schedules if "fallback" in s]
    injected = [s for s in schedules if "conv2d" in s["func"] and "resize2d" in s["func"]]
    assert injected, [s["func"] for s in schedules]
    assert {s["rule"] for s in injected} == {"conv1x1"}, injected
    x = sample_input(shape)
    assert float(np.abs(compiler.load_artifact(out)(x) - reference(ckpt, x)).max()) < 1e-4
