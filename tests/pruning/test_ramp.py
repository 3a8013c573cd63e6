"""The ramped MACs target and the flip budget that matches it."""

import pytest

from edgeprune.pruning.ramp import TargetRamp


def test_the_target_descends_linearly_then_holds():
    ramp = TargetRamp(full_macs=100.0, target_macs=60.0, ramp_iters=4)
    assert [ramp.at(i) for i in range(6)] == pytest.approx([90.0, 80.0, 70.0, 60.0, 60.0, 60.0])


def test_the_flip_budget_is_twice_the_ramps_average_rate():
    ramp = TargetRamp(full_macs=100.0, target_macs=60.0, ramp_iters=10)
    assert ramp.flip_budget(1000) == 80  # 400 channels' worth over 10 steps, twice over
    assert TargetRamp(100.0, 99.9, 1000).flip_budget(10) == 1
