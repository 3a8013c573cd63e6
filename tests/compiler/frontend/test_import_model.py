"""Importing checkpoints and ONNX files, and the one-line errors for bad input."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from torch import nn

from edgeprune import compiler
from edgeprune.base.errors import EdgepruneError
from edgeprune.compiler.frontend import import_model
from edgeprune.pruning.checkpoint import ArchInfo, save_checkpoint
from tests.compiler.checkpoints import reference, sample_input


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_checkpoint_and_onnx_give_the_same_numbers(user_checkpoint, user_artifact, tmp_path):
    onnx_art = compiler.compile(user_checkpoint / "model.onnx", out=tmp_path / "onnx_art")
    x = sample_input(compiler.load_artifact(onnx_art).inputs[0].shape)
    from_ckpt = compiler.load_artifact(user_artifact)(x)
    from_onnx = compiler.load_artifact(onnx_art)(x)
    np.testing.assert_allclose(from_onnx, from_ckpt, atol=1e-5)
    np.testing.assert_allclose(from_onnx, reference(user_checkpoint, x), atol=1e-4)


def test_import_reports_shapes_and_names(user_checkpoint):
    imported = import_model(user_checkpoint)
    assert [(t.name, t.shape, t.dtype) for t in imported.inputs] == [("input", (1, 3, 45, 61), "float32")]
    assert imported.outputs[0].name == "logits" and imported.outputs[0].shape == (1, 5, 12, 16)
    onnx_imported = import_model(user_checkpoint / "model.onnx")
    assert onnx_imported.inputs == imported.inputs and onnx_imported.outputs == imported.outputs
    assert len(imported.source_sha256) == 64


def test_not_an_onnx_file(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_text("this is not a protobuf\n" * 10)
    with pytest.raises(EdgepruneError) as exc:
        compiler.compile(bad, out=tmp_path / "art")
    assert str(bad) in one_line(exc) and "not an ONNX model" in str(exc.value)
    assert not (tmp_path / "art").exists()


def test_empty_file_is_not_onnx(tmp_path):
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(EdgepruneError, match="not an ONNX model"):
        import_model(empty)


def _onnx_model(path, node, input_dims, output_dims):
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, input_dims)],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, output_dims)],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_unsupported_onnx_operator_is_named_with_its_node(tmp_path):
    path = _onnx_model(
        tmp_path / "lp.onnx", helper.make_node("LpNormalization", ["input"], ["logits"], name="norm_7"),
        [1, 3, 8, 8], [1, 3, 8, 8],
    )
    with pytest.raises(EdgepruneError) as exc:
        import_model(path)
    assert all(s in one_line(exc) for s in (str(path), "LpNormalization", "norm_7"))


def test_dynamic_onnx_shape_needs_an_input_shape(tmp_path):
    path = _onnx_model(
        tmp_path / "relu.onnx", helper.make_node("Relu", ["input"], ["logits"], name="relu"),
        ["N", 3, "H", "W"], ["N", 3, "H", "W"],
    )
    with pytest.raises(EdgepruneError) as exc:
        import_model(path)
    assert str(path) in one_line(exc) and "dynamic shape" in str(exc.value) and "--input-shape" in str(exc.value)
    art = compiler.load_artifact(compiler.compile(path, out=tmp_path / "art", input_shape=(1, 3, 5, 7)))
    x = sample_input((1, 3, 5, 7))
    np.testing.assert_array_equal(art(x), np.maximum(x, 0))


class Lgamma(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)

    def forward(self, x):
        return torch.lgamma(self.conv(x).abs() + 1)


def lgamma_model(num_classes: int = 2) -> nn.Module:
    return Lgamma()


def test_unsupported_torch_operator_is_named_with_its_node(tmp_path):
    arch = ArchInfo(model=f"{__name__}:lgamma_model", num_classes=2, input_shape=[1, 3, 8, 8], mean=[0.0] * 3, std=[1.0] * 3)
    ckpt = save_checkpoint(tmp_path / "ckpt", Lgamma(), arch, {}, export=False)
    with pytest.raises(EdgepruneError) as exc:
        import_model(ckpt)
    assert all(s in one_line(exc) for s in (str(ckpt), "lgamma", "node"))


def test_bad_input_shape_and_missing_source(tmp_path, user_checkpoint):
    with pytest.raises(EdgepruneError, match="4 positive integers"):
        import_model(user_checkpoint, input_shape=(1, 3, 0, 8))
    with pytest.raises(EdgepruneError, match="no such file"):
        import_model(tmp_path / "nothing.onnx")
