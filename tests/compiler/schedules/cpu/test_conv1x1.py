"""Pointwise convolutions: odd channel counts and sizes, residual, several full-size side inputs
or resized ones (TopFormer's injection modules), a squeeze-excite gate broadcast over a map, and
no epilogue."""

import numpy as np
import pytest
from tvm import relax, s_tir

from edgeprune.compiler.schedules.base import blocks_of
from edgeprune.compiler.schedules.registry import match
from tests.compiler.schedules.cases import RULES, check_rule, conv, fused_module, injection, kernel_with, prim_func, run


def injected(cin: int, cout: int):
    """``conv1x1(x) * gate + feature``: an epilogue reading two full-size side inputs."""
    return lambda x, gate, feature: relax.op.add(relax.op.multiply(conv(cin, cout, 1)(x), gate), feature)


def gated(cin: int, cout: int):
    """A squeeze-excite gate, ``features * hardsigmoid(conv1x1(pooled))``: the conv's 1x1 result
    broadcast over the features' map in its epilogue (MobileNetV3)."""
    def build(pooled, features):
        logits = relax.op.add(conv(cin, cout, 1, epilogue="none")(pooled), relax.const(3.0))
        return relax.op.multiply(features, relax.op.divide(relax.op.clip(logits, 0.0, 6.0), relax.const(6.0)))
    return build


def sigmoid_gated(cin: int, cout: int):
    """EfficientNet's gate: ``features * sigmoid(conv1x1(pooled) + 0.5)``."""
    def build(pooled, features):
        logits = relax.op.add(conv(cin, cout, 1, epilogue="none")(pooled), relax.const(0.5))
        return relax.op.multiply(features, relax.op.sigmoid(logits))
    return build


CASES = {
    "odd channels and size": (conv(13, 30, 1), [(1, 13, 9, 11)]),
    "residual relu6": (conv(24, 24, 1, epilogue="bias_relu6_residual"), [(1, 24, 7, 19), (1, 24, 7, 19)]),
    "no epilogue": (conv(8, 19, 1, epilogue="none"), [(1, 8, 5, 5)]),
    "large map, packed panels": (conv(20, 12, 1), [(1, 20, 40, 50)]),
    "two side inputs, packed panels": (injected(30, 12), [(1, 30, 31, 33), (1, 12, 31, 33), (1, 12, 31, 33)]),
    "expanding, unpacked": (conv(16, 96, 1), [(1, 16, 48, 48)]),
    "squeeze-excite gate": (gated(6, 24), [(1, 6, 1, 1), (1, 24, 13, 17)]),
    "squeeze-excite sigmoid gate": (sigmoid_gated(6, 24), [(1, 6, 1, 1), (1, 24, 13, 17)]),
    "7x7 map, padded": (conv(40, 24, 1), [(1, 40, 7, 7)]),
    "7x7 map, padded, no epilogue": (conv(16, 24, 1, epilogue="none"), [(1, 16, 7, 7)]),
    "14x14 map, padded, residual": (conv(24, 24, 1, epilogue="bias_relu6_residual"), [(1, 24, 14, 14), (1, 24, 14, 14)]),
}


@pytest.mark.parametrize("case", CASES)
def test_conv1x1(case):
    build, shapes = CASES[case]
    check_rule(prim_func(build, *shapes), "conv1x1")


def test_a_gates_activation_runs_once_per_channel_not_per_point_of_the_map():
    """Inlined into the broadcast multiply, the sigmoid's exponential ran for every point of the
    features (EfficientNet-B0's gate kernels took 5-10x their memory time)."""
    func = prim_func(sigmoid_gated(6, 24), (1, 6, 1, 1), (1, 24, 13, 17))
    rule, workload = match(RULES, func)
    sch = s_tir.Schedule(func)
    rule.apply(sch, workload, rule.default(workload))
    output = sch.mod["main"].params[-1].name
    (broadcast,) = [b for b in blocks_of(sch) if sch.get(b).writes[0].source.name == output]
    assert "reinterpret" not in str(sch.get(broadcast).body)  # the exponential builds 2^n in the exponent bits
    assert any("reinterpret" in str(sch.get(b).body) for b in blocks_of(sch))


def test_conv1x1_blending_resized_side_inputs_in_its_epilogue():
    """The height passes of two bilinear resizes (odd sizes: 8x9 and 16x17 maps to 31x33) run in
    the epilogue, on rows of the width-blended maps."""
    mod = fused_module(injection(12, 30, (31, 33)), (1, 12, 31, 33), (1, 30, 8, 9), (1, 30, 16, 17))
    func = kernel_with(mod, "conv2d_nchw")
    check_rule(func, "conv1x1", extra=({"panel": 4, "order": "channel"}, {"panel": 0, "nvec": 2, "order": "spatial"}))
    assert match(RULES, func)[1]["side"] == 0  # blended rows, no full-size maps


def test_packed_panels_with_the_conv_input_as_residual():
    """Regression: the packed-panel copy took over every read of the input, the residual add's
    too, and then could not be moved into the panel loop (every 1-core default failed on it)."""
    func = prim_func(conv(20, 20, 1, epilogue="bias_self_residual"), (1, 20, 13, 15))
    rule, workload = match(RULES, func)
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal([int(d) for d in p.shape]).astype("float32") for p in func.params[:-1]]
    expected = run(func, inputs)
    config = rule.check_config(workload, {"panel": 4, "order": "channel", "nvec": 1})
    sch = s_tir.Schedule(func)
    rule.apply(sch, workload, config)
    np.testing.assert_allclose(run(sch.mod["main"], inputs), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "build, shapes, side",
    [
        (conv(8, 12, 1), [(1, 8, 16, 16)], 0),  # the bias is no full-size map
        (conv(8, 8, 1, epilogue="bias_relu6_residual"), [(1, 8, 16, 16), (1, 8, 16, 16)], 1),
        (conv(8, 8, 1, epilogue="bias_self_residual"), [(1, 8, 16, 16)], 1),  # the conv's own input
        (injected(8, 12), [(1, 8, 16, 16), (1, 12, 16, 16), (1, 12, 16, 16)], 2),
    ],
)
def test_workload_counts_full_size_side_inputs(build, shapes, side):
    rule, workload = match(RULES, prim_func(build, *shapes))
    assert workload["side"] == side
    streams_side_inputs = (rule.default(workload)["tile_co"], rule.default(workload)["nvec"]) == (4, 4)
    assert streams_side_inputs == (side >= 2)


def update_predicate(func, config: dict) -> str:
    """The ``T.where`` guarding the conv's accumulation under ``config``, or ''."""
    rule, workload = match(RULES, func)
    sch = s_tir.Schedule(func)
    rule.apply(sch, workload, rule.check_config(workload, {**rule.default(workload), **config}))
    block = sch.mod.script().split('T.sblock("conv2d_nchw_update")')[1].split("T.reads")[0]
    return next((line.strip() for line in block.splitlines() if "T.where" in line), "")


@pytest.mark.parametrize("config", [{"vec": 16, "nvec": 1}, {"vec": 16, "nvec": 3}, {"vec": 8, "nvec": 2, "panel": 0}])
def test_ragged_maps_accumulate_unpredicated(config):
    """Regression: a 7x7 map (49 = 3 x 16 + 1) ended in a tile guarded per lane, and TVM ran
    every vector of the micro-kernel as scalars (3.5 GFLOP/s instead of ~100)."""
    assert update_predicate(prim_func(conv(32, 16, 1), (1, 32, 7, 7)), config) == ""


@pytest.mark.parametrize(("cin", "cout", "packed"), [(96, 24, True), (64, 64, False), (24, 144, False)])
def test_default_packs_panels_only_where_the_input_has_more_channels(cin, cout, packed):
    """An expanding conv's time is in its output writes: packed panels scatter them over every
    output channel (16 -> 96 at 112x112 ran 3.5x slower packed, cold)."""
    rule, workload = match(RULES, prim_func(conv(cin, cout, 1), (1, cin, 56, 56)))
    assert (rule.default(workload)["panel"] > 0) == packed


def test_default_covers_a_map_of_four_vectors_in_two_tiles():
    """49 = 7 x 7 positions padded to 64 on 16 lanes (25 = 5 x 5 to 32 on 8): two 2-vector tiles
    read every weight twice, not 4 times."""
    side = 7 if RULES[0].hw.vector_lanes >= 16 else 5
    rule, workload = match(RULES, prim_func(conv(160, 320, 1), (1, 160, side, side)))
    default = rule.default(workload)
    assert default["nvec"] == 2 and default["vec"] == rule.hw.vector_lanes and default["tile_co"] == 8


def test_default_vector_is_wide_on_a_ragged_map():
    """196 = 14 x 14 columns: 16 lanes padded to 208 beat exact 4-lane vectors."""
    rule, workload = match(RULES, prim_func(conv(32, 16, 1), (1, 32, 14, 14)))
    assert rule.default(workload)["vec"] == max(rule.space(workload)["vec"])
