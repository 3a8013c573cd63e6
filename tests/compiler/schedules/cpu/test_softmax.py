"""Softmax over the last axis; over an inner axis it is left to the generic rule."""

from tvm import relax

from tests.compiler.schedules.cases import check_rule, prim_func


def test_softmax_last_axis():
    check_rule(prim_func(lambda x: relax.op.nn.softmax(x, axis=-1), (3, 5, 37)), "softmax")


def test_softmax_inner_axis_is_generic():
    check_rule(prim_func(lambda x: relax.op.nn.softmax(x, axis=1), (1, 7, 5, 6)), "generic")
