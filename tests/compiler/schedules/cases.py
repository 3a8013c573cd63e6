"""Single-op Relax programs lowered to the fused PrimFunc a rule sees, and the check every
rule test runs: the rule's default config and two random configs from its space, against the
unscheduled TIR (awkward shapes on purpose: channels no multiple of the vector width, odd
spatial sizes, stride 2, dilation, groups)."""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np
import tvm
from tvm import relax, s_tir

from edgeprune.compiler.passes import FuseEpilogue
from edgeprune.compiler.passes.structure import block_names, conv_kernels, convs_in, prim_funcs
from edgeprune.compiler.schedules.cpu import cpu_rules
from edgeprune.compiler.schedules.registry import match
from edgeprune.compiler.target import hardware_of, make_target
from edgeprune.compiler.targets import resolve_target

Builder = Callable[..., relax.Expr]


def fused_module(build: Builder, *shapes: tuple[int, ...], merge_convs: bool = False) -> tvm.IRModule:
    """``build(*inputs)`` legalized and fused (``FuseEpilogue``)."""
    bb = relax.BlockBuilder()
    inputs = [relax.Var(f"x{i}", relax.TensorType(s, "float32")) for i, s in enumerate(shapes)]
    with bb.function("main", inputs):
        with bb.dataflow():
            out = bb.emit_output(build(*inputs))
        bb.emit_func_output(out)
    return FuseEpilogue(merge_convs)(bb.get())


def convs_per_kernel(mod: tvm.IRModule) -> list[int]:
    """How many convs each conv kernel of ``mod`` holds, sorted."""
    return sorted(convs_in(blocks) for blocks in conv_kernels(mod).values())


def prim_func(build: Builder, *shapes: tuple[int, ...], merge_convs: bool = False) -> tvm.tirx.PrimFunc:
    """Legalize and fuse ``build(*inputs)`` and return the one PrimFunc that results."""
    mod = fused_module(build, *shapes, merge_convs=merge_convs)
    funcs = [f for f in mod.functions.values() if isinstance(f, tvm.tirx.PrimFunc)]
    assert len(funcs) == 1, [gv.name_hint for gv in mod.functions]
    return funcs[0]


def const(shape: tuple[int, ...], seed: int) -> relax.Constant:
    return relax.const(np.random.default_rng(seed).standard_normal(shape).astype("float32"))


def conv(cin: int, cout: int, k: int, stride: int = 1, dilation: int = 1, groups: int = 1, epilogue: str = "bias_relu") -> Builder:
    """conv2d (+ bias, + activation or residual) on input ``x0`` (and residual ``x1``)."""

    def build(x, *rest):
        y = relax.op.nn.conv2d(
            x, const((cout, cin // groups, k, k), 1), strides=stride, padding=dilation * (k // 2),
            dilation=dilation, groups=groups,
        )
        if epilogue == "none":
            return y
        y = relax.op.add(y, const((1, cout, 1, 1), 2))
        if epilogue == "bias_relu":
            return relax.op.nn.relu(y)
        if epilogue == "bias_relu6_residual":
            return relax.op.add(relax.op.clip(y, 0.0, 6.0), rest[0])
        if epilogue == "bias_self_residual":  # x + conv(x): the conv's input is also the epilogue's
            return relax.op.add(y, x)
        if epilogue == "bias_hswish":
            return relax.op.multiply(y, relax.op.divide(relax.op.clip(relax.op.add(y, relax.const(3.0)), 0.0, 6.0), relax.const(6.0)))
        raise ValueError(epilogue)

    return build


def expand_depthwise(cin: int, ce: int, k: int, stride: int = 1, epilogue: str = "bias_relu",
                     expand_epilogue: str = "bias_relu") -> Builder:
    """An inverted residual's expand 1x1 conv (``expand_epilogue``) and depthwise conv (``epilogue``)."""
    expand = conv(cin, ce, 1, epilogue=expand_epilogue)
    depthwise = conv(ce, ce, k, stride=stride, groups=ce, epilogue=epilogue)
    return lambda x: depthwise(expand(x))


def separable(
    cin: int, cout: int, k: int, stride: int = 1, dilation: int = 1, epilogue: str = "bias_relu",
    depthwise_epilogue: str = "bias_relu",
) -> Builder:
    """A depthwise kxk conv (``depthwise_epilogue``) and a pointwise 1x1 conv (``epilogue``; a
    residual is the second input)."""
    depthwise = conv(cin, cin, k, stride=stride, dilation=dilation, groups=cin, epilogue=depthwise_epilogue)
    pointwise = conv(cin, cout, 1, epilogue=epilogue)
    return lambda x, *rest: pointwise(depthwise(x), *rest)


def resized(x: relax.Expr, size: tuple[int, int], mode: str = "half_pixel") -> relax.Expr:
    """``x`` bilinearly resized to ``size``."""
    return relax.op.image.resize2d(x, size, method="linear", coordinate_transformation_mode=mode)


def injection(cin: int, cout: int, size: tuple[int, int]) -> Builder:
    """TopFormer's injection module: ``conv1x1(x) * resize(gate) + resize(feature)``, both side
    inputs bilinearly resized to the conv's ``size``."""
    return lambda x, gate, feature: relax.op.add(
        relax.op.multiply(conv(cin, cout, 1)(x), resized(gate, size)), resized(feature, size)
    )


def kernel_with(mod: tvm.IRModule, block: str) -> tvm.tirx.PrimFunc:
    """The one PrimFunc of ``mod`` holding a block named ``block``."""
    found = [f for f in prim_funcs(mod).values() if block in block_names(f)]
    assert len(found) == 1, [gv.name_hint for gv in mod.functions]
    return found[0]


TARGET = make_target(resolve_target("host"))
RULES = cpu_rules(hardware_of(TARGET))


def run(func: tvm.tirx.PrimFunc, inputs: list[np.ndarray]) -> np.ndarray:
    lib = tvm.compile(tvm.IRModule({"main": func.with_attr("global_symbol", "main")}), TARGET)
    out_shape = [int(d) for d in func.params[-1].shape]
    out = tvm.runtime.tensor(np.full(out_shape, np.nan, dtype="float32"))
    lib.mod["main"](*[tvm.runtime.tensor(a) for a in inputs], out)
    return out.numpy()


def check_rule(func: tvm.tirx.PrimFunc, rule_name: str, seed: int = 0, extra: tuple[dict, ...] = ()) -> None:
    """Default, two random and the ``extra`` (partial) configs of the rule against the unscheduled TIR."""
    rule, workload = match(RULES, func)
    assert rule.name == rule_name, workload.key
    rng = np.random.default_rng(seed)
    inputs = [rng.standard_normal([int(d) for d in p.shape]).astype("float32") for p in func.params[:-1]]
    expected = run(func, inputs)
    space = rule.space(workload)
    pick = random.Random(seed)
    configs = [rule.default(workload)] + [{k: pick.choice(v) for k, v in space.items()} for _ in range(2)]
    configs += [{**rule.default(workload), **partial} for partial in extra]
    for config in configs:
        assert rule.check_config(workload, config) == config
        sch = s_tir.Schedule(func)
        rule.apply(sch, workload, config)
        got = run(sch.mod["main"], inputs)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5, err_msg=f"{workload.key} {config}")
