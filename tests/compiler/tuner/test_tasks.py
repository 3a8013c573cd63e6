"""Task facts the tuner ranks workloads by: a merged pair of convs counts both convs' FLOPs
(``--heaviest`` skipped merged kernels, the heaviest of TopFormer-Tiny among them)."""

import pytest

from edgeprune.compiler.schedules.registry import match
from tests.compiler.schedules.cases import RULES, expand_depthwise, fused_module, separable


def kernel_flops(build, shape, merge_convs: bool) -> list[float]:
    mod = fused_module(build, shape, merge_convs=merge_convs)
    funcs = [f for gv, f in mod.functions.items() if gv.name_hint != "main"]
    return [rule.flops(wl) for rule, wl in (match(RULES, f) for f in funcs)]


@pytest.mark.parametrize(
    "build, shape",
    [(expand_depthwise(8, 24, 3, stride=2), (1, 8, 16, 18)), (separable(12, 20, 5), (1, 12, 9, 11))],
)
def test_merged_pair_counts_both_convs(build, shape):
    (merged,) = kernel_flops(build, shape, merge_convs=True)
    apart = kernel_flops(build, shape, merge_convs=False)
    assert len(apart) == 2 and None not in apart
    assert merged == sum(apart)
