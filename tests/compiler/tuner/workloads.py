"""A tiny ONNX model to tune, and a task re-targeted to a test rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from edgeprune.compiler.target import hardware_of, make_target
from edgeprune.compiler.tuner.measure import Kernel
from edgeprune.compiler.tuner.tasks import Task


def save_onnx(path: Path, c_in: int = 32, c_mid: int = 32, hw: tuple[int, int] = (16, 24)) -> Path:
    """input -> 1x1 conv (c_in->c_mid) + ReLU -> 3x3 conv (c_mid->4) -> logits."""
    rng = np.random.default_rng(0)
    w1 = rng.standard_normal((c_mid, c_in, 1, 1)).astype(np.float32) * 0.2
    w2 = rng.standard_normal((4, c_mid, 3, 3)).astype(np.float32) * 0.1
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["input", "w1"], ["a"], name="pw"),
            helper.make_node("Relu", ["a"], ["b"]),
            helper.make_node("Conv", ["b", "w2"], ["logits"], name="k3", pads=[1, 1, 1, 1]),
        ],
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, c_in, *hw])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 4, *hw])],
        [helper.make_tensor("w1", TensorProto.FLOAT, list(w1.shape), w1.ravel()),
         helper.make_tensor("w2", TensorProto.FLOAT, list(w2.shape), w2.ravel())],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def task_with_rule(task, rule_cls, host_target):
    """``task`` scheduled by ``rule_cls`` (a test rule) instead of its registry rule."""
    rule = rule_cls(hardware_of(make_target(host_target)))
    kernel = Kernel(rule, task.workload, task.kernel.func_json, task.kernel.args)
    return Task(rule, task.workload, kernel, task.calls)
