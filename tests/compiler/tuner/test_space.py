"""Genes over a rule's knobs, and the combinations rejected before anything is built."""

from __future__ import annotations

import random

from edgeprune.compiler.schedules.base import MAX_UNROLLED_FMAS, Workload
from edgeprune.compiler.schedules.conv_analysis import ConvGeometry
from edgeprune.compiler.schedules.cpu.conv2d import Conv2d
from edgeprune.compiler.schedules.cpu.depthwise import DepthwiseConv
from edgeprune.compiler.schedules.cpu.resize import SeparableResize2d
from edgeprune.compiler.schedules.cpu.softmax import Softmax
from edgeprune.compiler.target import Hardware
from edgeprune.compiler.tuner.space import SearchSpace
from tests.compiler.tuner.landscape import landscape_space

HW = Hardware(vector_lanes=16, cores=2)


def conv(op: str, ci: int, co: int, k: int, oh: int, ow: int, groups: int = 1, stride: int = 1) -> Workload:
    pad = k // 2
    geometry = ConvGeometry(
        n=1, ci=ci, h=oh * stride, w=ow * stride, co=co, kh=k, kw=k, sh=stride, sw=stride, dh=1, dw=1,
        pt=pad, pl=pad, oh=oh, ow=ow, groups=groups, padded=pad > 0,
    )
    return geometry.workload(op, "float32", "conv2d_nchw")


def test_gene_and_config_round_trip():
    space = landscape_space(3, 4)
    assert space.size == 64 and space.knobs == ("k0", "k1", "k2")
    rng = random.Random(0)
    for _ in range(20):
        gene = space.random_gene(rng)
        assert space.gene(space.config(gene)) == gene
    assert space.default_gene() == (0, 0, 0)


def test_depthwise_rejects_unrolled_bodies_over_the_cap():
    wl = conv("depthwise_conv2d", 32, 32, 7, 32, 64, groups=32)
    space = SearchSpace(DepthwiseConv(HW), wl)
    config = space.rule.check_config(wl, {"tile_y": 4, "nvec": 2})
    assert 49 * 4 * 2 > MAX_UNROLLED_FMAS
    assert "too large" in space.invalid(space.gene(config))
    assert space.invalid(space.gene(space.rule.check_config(wl, {"tile_y": 4, "nvec": 1}))) is None
    assert space.invalid(space.default_gene()) is None
    assert 0 < space.valid_count() < space.size


def test_conv2d_rejects_tiles_wider_than_the_output():
    wl = conv("conv2d", 16, 32, 3, 4, 8)
    space = SearchSpace(Conv2d(HW), wl)
    assert "wider" in space.invalid(space.gene(space.rule.check_config(wl, {"nvec": 2, "vec": 16})))
    assert "taller" in space.invalid(space.gene(space.rule.check_config(wl, {"tile_y": 8})))
    unrolled = space.rule.check_config(wl, {"unroll_taps": 1, "tile_co": 16, "nvec": 2, "vec": 4})
    assert "too large" in space.invalid(space.gene(unrolled))
    assert space.invalid(space.default_gene()) is None


def test_softmax_rejects_vector_widths_that_do_not_divide_the_row():
    wl = Workload("softmax", (("rows", 8), ("cols", 24)), "float32", "T_softmax_norm")
    space = SearchSpace(Softmax(HW), wl)
    reasons = {v: space.invalid(space.gene({"vec": v, "parallel": 0})) for v in space.values[0]}
    assert reasons[1] is None and reasons[8] is None and reasons[16] is not None


def test_every_valid_gene_is_valid_and_the_rest_are_not():
    wl = conv("depthwise_conv2d", 8, 8, 5, 6, 20, groups=8)
    space = SearchSpace(DepthwiseConv(HW), wl)
    valid = set(space.valid_genes())
    everything = [space.random_gene(random.Random(i)) for i in range(300)]
    assert all((space.invalid(g) is None) == (g in valid) for g in everything)


def test_separable_resize_rejects_vectors_wider_than_the_row():
    params = (("n", 1), ("c", 4), ("h", 3), ("w", 3), ("oh", 6), ("ow", 6))
    wl = Workload("resize2d_separable", params, "float32", "resize")
    space = SearchSpace(SeparableResize2d(HW), wl)
    reasons = {v: space.invalid(space.gene({"stage": "channel", "vec": v, "gather_vec": 0})) for v in (4, 8, 16)}
    assert reasons[4] is None and reasons[8] is None and "wider" in reasons[16]
