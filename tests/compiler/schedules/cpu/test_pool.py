"""Average (ceil mode, padded), max and global pooling; uneven adaptive windows and padded epilogues go generic."""

import numpy as np
import pytest
import tvm
from tvm import relax, s_tir

from edgeprune.compiler.schedules.base import NotApplicable
from edgeprune.compiler.schedules.registry import match, schedule_module
from tests.compiler.schedules.cases import RULES, check_rule, prim_func, run

CASES = {
    "avg pool ceil mode": (lambda x: relax.op.nn.avg_pool2d(x, 3, 2, padding=1, ceil_mode=True), "pool2d"),
    "max pool": (lambda x: relax.op.nn.max_pool2d(x, 3, 2, padding=1), "pool2d"),
    "global avg pool": (lambda x: relax.op.nn.adaptive_avg_pool2d(x, 1), "pool2d"),
    "adaptive pool uneven windows": (lambda x: relax.op.nn.adaptive_avg_pool2d(x, (2, 3)), "generic"),
}


@pytest.mark.parametrize("case", CASES)
def test_pool(case):
    build, rule = CASES[case]
    check_rule(prim_func(build, (1, 6, 13, 11)), rule)


def test_a_pad_in_the_epilogue_keeps_its_padded_channels():
    """BlazeFace pads a pooled map's channels before its residual add. The padded channels read
    no pooled value, so under the pool's channel loop they would never be written: the rule
    declines and the kernel is still right."""
    func = prim_func(lambda x, z: relax.op.add(relax.op.nn.pad(relax.op.nn.max_pool2d(x, 2, 2), [0, 0, 0, 4, 0, 0, 0, 0]), z),
                     (1, 6, 8, 8), (1, 10, 4, 4))
    rule, workload = match(RULES, func)
    assert rule.name == "pool2d"
    with pytest.raises(NotApplicable, match="pad"):
        rule.apply(s_tir.Schedule(func), workload, rule.default(workload))
    scheduled, records = schedule_module(tvm.IRModule({"main": func}), RULES, {})
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal([int(d) for d in p.shape]).astype("float32") for p in func.params[:-1]]
    np.testing.assert_allclose(run(scheduled["main"], inputs), run(func, inputs), rtol=1e-6)
    assert records[0].rule == "generic"
