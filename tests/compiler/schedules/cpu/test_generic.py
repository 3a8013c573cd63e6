"""The fallback on injective and elementwise functions."""

from tvm import relax

from tests.compiler.schedules.cases import check_rule, prim_func


def test_concat_transpose():
    build = lambda a, b: relax.op.permute_dims(relax.op.concat([a, b], axis=1), [0, 2, 3, 1])  # noqa: E731
    check_rule(prim_func(build, (1, 3, 5, 7), (1, 4, 5, 7)), "generic")


def test_elementwise_parallel_and_vectorised():
    build = lambda a, b: relax.op.multiply(relax.op.sigmoid(a), b)  # noqa: E731
    check_rule(prim_func(build, (2, 3, 64, 65), (2, 3, 64, 65)), "generic")
