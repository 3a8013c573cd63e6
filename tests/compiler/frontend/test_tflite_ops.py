"""edgeprune's TFLite operators against LiteRT: MediaPipe's Convolution2DTransposeBias at the
strides, kernels and paddings its decoders use, imported and compiled for the host."""

from __future__ import annotations

import numpy as np
import pytest
import tvm
from tvm import relax

from edgeprune import compiler
from edgeprune.compiler import load_artifact
from edgeprune.compiler.frontend import import_model
from edgeprune.compiler.frontend.tflite_ops import CUSTOM_OPS
from edgeprune.device.compare import litert_engine
from tests.compiler.frontend.tflite_files import transpose_conv_bias, write_model

CASES = {  # NHWC input, output channels, kernel, strides, SAME padding
    "selfie decoder 2x2 s2 same": ((1, 8, 8, 6), 4, (2, 2), (2, 2), True),
    "3x3 s2 same, odd map": ((1, 5, 7, 3), 5, (3, 3), (2, 2), True),
    "4x4 s2 same": ((1, 6, 6, 4), 3, (4, 4), (2, 2), True),
    "3x3 s2 valid": ((1, 4, 4, 2), 3, (3, 3), (2, 2), False),
    "5x5 s3 same": ((1, 4, 5, 3), 3, (5, 5), (3, 3), True),
}


@pytest.mark.parametrize("case", CASES)
def test_convolution_2d_transpose_bias_matches_litert(case, tmp_path):
    path = write_model(transpose_conv_bias(*CASES[case]), tmp_path / "op.tflite")
    x = np.random.default_rng(1).standard_normal(CASES[case][0]).astype(np.float32)
    (expected,) = litert_engine(path, threads=1)(x)
    artifact = load_artifact(compiler.compile(path, out=tmp_path / "art"))
    got = artifact(x)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def test_the_op_is_registered_by_its_code_and_runs_in_nchw(tmp_path):
    assert "Convolution2DTransposeBias" in CUSTOM_OPS
    imported = import_model(write_model(transpose_conv_bias(*CASES["3x3 s2 valid"]), tmp_path / "op.tflite"))
    calls = [b.value for block in imported.mod["main"].body.blocks for b in block.bindings
             if isinstance(b.value, relax.Call) and isinstance(b.value.op, tvm.ir.Op)]
    # one transpose at each end; the transposed conv itself is NCHW
    assert [c.op.name for c in calls].count("relax.permute_dims") == 2
    assert [c.attrs.data_layout for c in calls if c.op.name == "relax.nn.conv2d_transpose"] == ["NCHW"]
    assert imported.inputs[0].layout == imported.outputs[0].layout == "NHWC"
