"""Data-dependent shapes and inputs too large for memory are refused with one line, before compiling."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import tvm
from onnx import TensorProto, helper
from tvm import te

from edgeprune import compiler
from edgeprune.base.errors import EdgepruneError
from edgeprune.compiler.static_shapes import check_kernels_static
from tests.compiler.tuner.workloads import save_onnx


def save_nms(path):
    """A conv whose outputs become boxes and scores for NonMaxSuppression (a detection head)."""
    w = np.random.default_rng(0).random((4, 3, 1, 1)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["input", "w"], ["conv"]),
        helper.make_node("Reshape", ["conv", "shape"], ["boxes"]),
        helper.make_node("ReduceMean", ["boxes"], ["mean"], axes=[2], keepdims=1),
        helper.make_node("Transpose", ["mean"], ["scores"], perm=[0, 2, 1]),
        helper.make_node("NonMaxSuppression", ["boxes", "scores", "max", "iou", "score"], ["selected"], name="nms"),
    ]
    constants = [
        helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.ravel()),
        helper.make_tensor("shape", TensorProto.INT64, [3], [1, 16, 4]),
        helper.make_tensor("max", TensorProto.INT64, [1], [5]),
        helper.make_tensor("iou", TensorProto.FLOAT, [1], [0.5]),
        helper.make_tensor("score", TensorProto.FLOAT, [1], [0.1]),
    ]
    graph = helper.make_graph(nodes, "detect", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 4, 4])],
                              [helper.make_tensor_value_info("selected", TensorProto.INT64, ["n", 3])], constants)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_a_data_dependent_operator_is_named(tmp_path):
    with pytest.raises(EdgepruneError, match="non_max_suppression .* depends on the data"):
        compiler.compile(save_nms(tmp_path / "nms.onnx"), out=tmp_path / "art")
    assert not (tmp_path / "art").exists()


def test_an_input_larger_than_memory_is_refused_before_anything_is_allocated(tmp_path):
    with pytest.raises(EdgepruneError, match=r"input shape \[1, 32, 100000, 100000\] is a .* GiB tensor"):
        compiler.compile(save_onnx(tmp_path / "m.onnx"), input_shape=(1, 32, 100000, 100000), out=tmp_path / "art")


def test_a_kernel_with_run_time_buffer_sizes_is_named(tmp_path):
    n = tvm.tirx.Var("n", "int64")
    a = te.placeholder((n,), name="a")
    doubled = te.create_prim_func([a, te.compute((n,), lambda i: a[i] * 2.0, name="b")])
    with pytest.raises(EdgepruneError, match="kernel doubled sizes its buffers at run time"):
        check_kernels_static(tvm.IRModule({"doubled": doubled}), tmp_path / "m.onnx")
