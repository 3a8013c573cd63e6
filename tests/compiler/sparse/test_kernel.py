"""The grouped sparse conv kernel against PyTorch's dense conv, under default and random configs."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import tvm

from edgeprune.compiler.schedules.registry import match
from edgeprune.compiler.sparse import format as fmt
from edgeprune.compiler.sparse.kernel import Structure, bias_epilogue, geometry, kernel_args, sparse_conv_func
from edgeprune.compiler.sparse.lower import dense_conv
from edgeprune.compiler.sparse.reorder import consecutive_groups, reorder
from edgeprune.compiler.sparse.synthetic import column_sparse
from tests.compiler.schedules.cases import RULES, TARGET, conv, prim_func, run

# (in, out, kernel, stride, H, W, patterns): channels no multiple of 8, odd sizes.
CASES = {
    "1x1 odd channels": (13, 30, 1, 1, 9, 11, 4),
    "1x1 stride 2": (12, 20, 1, 2, 9, 10, 3),
    "3x3 stride 1": (10, 19, 3, 1, 7, 13, 5),
    "3x3 stride 2": (9, 17, 3, 2, 11, 9, 4),
}


def _check(weight: np.ndarray, groups, stride: int, h: int, w: int, relu: bool, configs: int = 2, seed: int = 0):
    co, ci, k, _ = weight.shape
    sparse = fmt.encode(weight, groups)
    geom = geometry(1, ci, h, w, co, k, stride)
    func = sparse_conv_func(geom, Structure.of(sparse), bias_epilogue(co, relu))
    rule, workload = match(RULES, func)
    assert rule.name == "sparse_conv"
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, ci, h, w)).astype(np.float32)
    bias = rng.standard_normal(co).astype(np.float32)
    expected = F.conv2d(torch.from_numpy(x), torch.from_numpy(weight), torch.from_numpy(bias), stride=stride, padding=k // 2)
    expected = (torch.relu(expected) if relu else expected).numpy()
    space = rule.space(workload)
    picker = random.Random(seed)
    for index in range(configs):
        config = rule.default(workload) if index == 0 else {knob: picker.choice(v) for knob, v in space.items()}
        lib = tvm.compile(tvm.IRModule({"main": rule.schedule(func, workload, config)}), TARGET)
        out = tvm.runtime.tensor(np.full(expected.shape, np.nan, np.float32))
        lib["main"](*[tvm.runtime.tensor(a) for a in [x, *kernel_args(sparse), bias]], out)
        np.testing.assert_allclose(out.numpy(), expected, rtol=1e-4, atol=1e-4, err_msg=str(config))


@pytest.mark.parametrize("case", CASES)
def test_sparse_conv_matches_dense_reference(case):
    ci, co, k, stride, h, w, patterns = CASES[case]
    weight = column_sparse((co, ci, k, k), 0.7, patterns, seed=ci)
    _check(weight, reorder(weight), stride, h, w, relu=case.startswith("3x3"))


def test_unreordered_groups_and_an_all_zero_row():
    weight = column_sparse((11, 6, 3, 3), 0.6, patterns=3, seed=5)
    weight[4] = 0  # a group with no columns: its output is the epilogue of 0
    _check(weight, consecutive_groups(weight), 1, 6, 7, relu=False, configs=1)


def test_workload_key_names_the_structure_and_pointwise_gets_the_gather_knob():
    weight = column_sparse((16, 8, 1, 1), 0.5, patterns=2)
    sparse = fmt.encode(weight, reorder(weight))
    func = sparse_conv_func(geometry(1, 8, 5, 5, 16, 1), Structure.of(sparse))
    rule, workload = match(RULES, func)
    assert workload.key.startswith("sparse_conv2d(n=1,ci=8,") and f"sig={Structure.of(sparse).signature}" in workload.key
    assert rule.space(workload)["gather"] == [0, 1]
    func3 = sparse_conv_func(geometry(1, 8, 5, 5, 16, 3), Structure((16,), (72,)))
    assert rule.space(match(RULES, func3)[1])["gather"] == [1]


@pytest.mark.parametrize("epilogue, shapes", [
    ("bias_hswish", [(1, 12, 6, 9)]),
    ("bias_relu6_residual", [(1, 12, 6, 9), (1, 12, 6, 9)]),
])
def test_fused_epilogues_are_rebuilt_on_the_sparse_accumulator(epilogue, shapes):
    func = prim_func(conv(12, 12, 3 if len(shapes) == 1 else 1, epilogue=epilogue), *shapes)
    dense = dense_conv(func)
    rng = np.random.default_rng(1)
    inputs = [rng.standard_normal([int(d) for d in p.shape]).astype(np.float32) for p in func.params[:-1]]
    inputs[dense.weight_index] *= rng.random(inputs[dense.weight_index].shape) > 0.6
    expected = run(func, inputs)
    sparse = fmt.encode(inputs[dense.weight_index], reorder(inputs[dense.weight_index]))
    sparse_func = sparse_conv_func(dense.geometry, Structure.of(sparse), dense.epilogue)
    rule, workload = match(RULES, sparse_func)
    lib = tvm.compile(tvm.IRModule({"main": rule.schedule(sparse_func, workload, rule.default(workload))}), TARGET)
    out = tvm.runtime.tensor(np.full(expected.shape, np.nan, np.float32))
    args = [inputs[dense.data_index], *kernel_args(sparse), *(inputs[i] for i in dense.extra_indices)]
    lib["main"](*[tvm.runtime.tensor(a) for a in args], out)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-5)
