"""``edgeprune compile model.tflite``: real MediaPipe models against LiteRT on real photographs,
the file's NHWC layout kept at the artifact's edges, and one clear line for every file it
cannot take."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema

from benchmarks.real_models import IMAGES, image, tflite_model
from edgeprune import compiler
from edgeprune.base.errors import EdgepruneError
from edgeprune.compiler import load_artifact
from edgeprune.compiler.frontend import import_model
from edgeprune.device.compare import litert_engine
from edgeprune.device.opencl_check import check_artifact
from tests.compiler.frontend.tflite_files import sparse_pointwise_conv, transpose_conv_bias, write_model

# the bounds: output within 1e-4 of LiteRT's scale, the segmenter's mask on 99.9% of pixels
MAX_RELATIVE_ERROR = 1e-4
MIN_MASK_AGREEMENT = 0.999


@pytest.fixture(scope="module")
def selfie_artifact(tmp_path_factory):
    return load_artifact(compiler.compile(tflite_model("selfie_segmentation"), out=tmp_path_factory.mktemp("selfie") / "a"))


def test_selfie_segmenter_matches_litert_on_real_photographs(selfie_artifact):
    (spec,) = selfie_artifact.inputs
    assert spec.layout == "NHWC" and spec.shape == (1, 256, 256, 3)
    assert selfie_artifact.meta.source_kind == "tflite"
    assert all(s["rule"] != "generic" for s in selfie_artifact.meta.schedules if "conv" in s["func"])
    litert = litert_engine(tflite_model("selfie_segmentation"), threads=1)
    for name in IMAGES:
        x = image(name, 256, 256)
        (expected,) = litert(x)
        got = selfie_artifact(x)
        mask_agreement = np.mean((got > 0.5) == (expected > 0.5))
        assert mask_agreement >= MIN_MASK_AGREEMENT, (name, mask_agreement)
        if name in ("astronaut.png", "camera.png"):  # people: what the segmenter is for
            assert np.abs(got - expected).max() <= MAX_RELATIVE_ERROR * np.abs(expected).max(), name


def test_face_detector_matches_litert(tmp_path):
    path = tflite_model("face_detection")
    artifact = load_artifact(compiler.compile(path, out=tmp_path / "face"))
    assert [o.shape for o in artifact.outputs] == [(1, 896, 16), (1, 896, 1)]
    x = image("astronaut.png", 128, 128)
    for got, expected in zip(artifact(x), litert_engine(path, threads=1)(x), strict=True):
        assert np.abs(got - expected).max() <= MAX_RELATIVE_ERROR * np.abs(expected).max()


def test_sparse_format_weights_match_litert(tmp_path):
    """Float16 weights stored sparse (CSR over input channels), read through DENSIFY and
    DEQUANTIZE as MediaPipe's pose and full-range face detectors store theirs."""
    path = write_model(sparse_pointwise_conv((1, 5, 5, 6), 4), tmp_path / "sparse.tflite")
    x = np.random.default_rng(1).standard_normal((1, 5, 5, 6)).astype(np.float32)
    (expected,) = litert_engine(path, threads=1)(x)
    got = load_artifact(compiler.compile(path, out=tmp_path / "art"))(x)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def test_run_takes_the_files_layout(selfie_artifact, tmp_path, cli):
    np.save(tmp_path / "x.npy", image("astronaut.png", 256, 256))
    result = cli("run", str(selfie_artifact.path), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy"))
    assert result.returncode == 0, result.stderr
    assert np.load(tmp_path / "y.npy").shape == (1, 256, 256, 1)
    meta = json.loads((selfie_artifact.path / "meta.json").read_text())
    assert meta["inputs"][0]["layout"] == meta["outputs"][0]["layout"] == "NHWC"


def test_an_input_shape_is_given_in_the_files_layout(tmp_path):
    path = write_model(transpose_conv_bias((1, 4, 4, 2), 3, (3, 3), (2, 2), True), tmp_path / "op.tflite")
    imported = import_model(path, (1, 6, 5, 2))
    assert imported.inputs[0].shape == (1, 6, 5, 2) and imported.outputs[0].shape == (1, 12, 10, 3)
    with pytest.raises(EdgepruneError, match="must be 4 positive integers N,H,W,C"):
        import_model(path, (1, 6, 5))


def _edited(tmp_path, edit) -> str:
    model = transpose_conv_bias((1, 4, 4, 2), 3, (3, 3), (2, 2), True)
    edit(model)
    return str(write_model(model, tmp_path / "bad.tflite"))


def _quantized(model):
    tensor = model.subgraphs[0].tensors[0]
    tensor.type = schema.TensorType.INT8
    tensor.quantization = schema.QuantizationParametersT()
    tensor.quantization.scale, tensor.quantization.zeroPoint = [0.05], [0]


def _unknown_custom_op(model):
    model.operatorCodes[0].customCode = b"MaxUnpooling2D"


def _dynamic(model):
    model.subgraphs[0].tensors[0].shapeSignature = [1, -1, -1, 2]


BAD_FILES = {
    "not a TFLite file": (lambda tmp: (tmp / "m.tflite").write_bytes(b"\x00" * 64) and str(tmp / "m.tflite"),
                          "not a TFLite model"),
    "truncated": (lambda tmp: (tmp / "t.tflite").write_bytes(tflite_model("face_detection").read_bytes()[:4096])
                  and str(tmp / "t.tflite"), "not a TFLite model"),
    "quantized": (lambda tmp: _edited(tmp, _quantized), r"quantized model \(INT8 tensor 'input'\)"),
    "unknown custom op": (lambda tmp: _edited(tmp, _unknown_custom_op),
                          r"custom operator 'MaxUnpooling2D' \(node 'output'\) is not supported"),
    "dynamic shape": (lambda tmp: _edited(tmp, _dynamic), r"dynamic shape \[1, '\?', '\?', 2\]"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_a_file_it_cannot_take_is_named_with_its_problem(case, tmp_path):
    make, message = BAD_FILES[case]
    with pytest.raises(EdgepruneError, match=message):
        compiler.compile(make(tmp_path), out=tmp_path / "art")
    assert not (tmp_path / "art").exists()


def test_the_cli_says_it_in_one_line(tmp_path, cli):
    path = BAD_FILES["unknown custom op"][0](tmp_path)
    result = cli("compile", path, "--out", str(tmp_path / "art"))
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1 and lines[0].startswith("edgeprune: error: "), result.stderr
    assert "MaxUnpooling2D" in lines[0] and not (tmp_path / "art").exists()


def test_a_dynamic_file_compiles_at_a_given_shape(tmp_path):
    imported = import_model(_edited(tmp_path, _dynamic), (1, 5, 3, 2))
    assert imported.outputs[0].shape == (1, 10, 6, 3)


def test_face_detector_for_adreno660_passes_the_opencl_check(tmp_path):
    """Every GPU kernel of the BlazeFace build against the CPU build on this machine's OpenCL
    device: its pooled maps padded with channels run on a rule that writes the padded ones."""
    artifact = compiler.compile(tflite_model("face_detection"), target="adreno660", out=tmp_path / "gpu")
    report = check_artifact(artifact)
    assert report.ok, [r.to_json() for r in report.results if r.status != "ok"]
