"""Reductions of contiguous rows (a squeeze-excite pool's mean with its divide, a max over the
last axis): vector lanes where a width divides the row, unrolled scalar accumulators where none
does; reductions across rows stay generic."""

import pytest
from tvm import relax

from edgeprune.compiler.schedules.registry import match
from tests.compiler.schedules.cases import RULES, check_rule, prim_func

CASES = {  # builder, input shape, lanes of the default
    "mean over 32x48 maps (16 lanes divide the row)": (lambda x: relax.op.mean(x, axis=[2, 3], keepdims=True),
                                                      (1, 6, 32, 48), 16),
    "mean over 7x7 maps (7 unrolled accumulators)": (lambda x: relax.op.mean(x, axis=[2, 3], keepdims=True),
                                                    (1, 20, 7, 7), 7),
    "max over the last axis (8 lanes divide it)": (lambda x: relax.op.max(x, axis=[-1]), (3, 5, 40), 8),
}


@pytest.mark.parametrize("case", CASES)
def test_row_reduction(case):
    build, shape, lanes = CASES[case]
    func = prim_func(build, shape)
    check_rule(func, "row_reduction", extra=({"lanes": 1}, {"parallel": 0}))
    rule, workload = match(RULES, func)
    assert rule.default(workload)["lanes"] == min(lanes, max(rule.space(workload)["lanes"]))


def test_a_reduction_across_channels_stays_generic():
    """Its rows are strided (one element per channel map): no contiguous row to split into lanes."""
    rule, _ = match(RULES, prim_func(lambda x: relax.op.sum(x, axis=[1]), (1, 8, 6, 6)))
    assert rule.name == "generic"
