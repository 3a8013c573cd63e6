"""Batched matmul (attention) and dense with a fused bias + ReLU."""

import numpy as np
import pytest
from tvm import relax

from tests.compiler.schedules.cases import check_rule, prim_func


def dense_bias_relu(x, w):
    bias = relax.const(np.linspace(-1, 1, 40, dtype="float32"))
    return relax.op.nn.relu(relax.op.add(relax.op.matmul(x, w), bias))


CASES = {
    "batch matmul": (lambda a, b: relax.op.matmul(a, b), [(4, 17, 9), (4, 9, 23)]),
    "dense with bias and relu": (dense_bias_relu, [(33, 7), (7, 40)]),
}


@pytest.mark.parametrize("case", CASES)
def test_matmul(case):
    build, shapes = CASES[case]
    check_rule(prim_func(build, *shapes), "matmul")
