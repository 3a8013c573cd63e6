"""Read-only views of a module's structure, for tests and reports."""

from __future__ import annotations

import tvm
from tvm import relax, s_tir

from edgeprune.compiler.schedules.conv_analysis import CONV_ANCHORS


def rewrite_relax_functions(mod: tvm.IRModule, rewrite) -> tvm.IRModule:
    """``mod`` with every Relax function replaced by ``rewrite(function)``."""
    updates = {gv: rewrite(func) for gv, func in mod.functions.items() if isinstance(func, relax.Function)}
    for gv, func in updates.items():
        mod[gv] = func
    return mod


def relax_ops(mod: tvm.IRModule) -> set[str]:
    """Names of the Relax operators called by the module's Relax functions."""
    names: set[str] = set()

    def visit(expr: relax.Expr) -> None:
        if isinstance(expr, relax.Call) and isinstance(expr.op, tvm.ir.Op):
            names.add(expr.op.name)

    for func in mod.functions.values():
        if isinstance(func, relax.Function):
            relax.analysis.post_order_visit(func, visit)
    return names


def block_names(func: tvm.tirx.PrimFunc) -> list[str]:
    """Names of the blocks of a PrimFunc, root excluded, in program order."""
    sch = s_tir.Schedule(func)
    names: list[str] = []
    pending = list(sch.get_child_blocks(sch.get_sblock("root")))
    while pending:
        block = pending.pop(0)
        names.append(sch.get(block).name_hint)
        pending[:0] = list(sch.get_child_blocks(block))
    return names


def prim_funcs(mod: tvm.IRModule) -> dict[str, tvm.tirx.PrimFunc]:
    return {gv.name_hint: f for gv, f in mod.functions.items() if isinstance(f, tvm.tirx.PrimFunc)}


def conv_kernels(mod: tvm.IRModule) -> dict[str, list[str]]:
    """PrimFuncs holding a convolution, each with its block names (conv plus fused epilogue)."""
    kernels = {}
    for name, func in prim_funcs(mod).items():
        blocks = block_names(func)
        if convs_in(blocks):
            kernels[name] = blocks
    return kernels


def convs_in(blocks: list[str]) -> int:
    """How many convolutions a kernel with these block names computes (2 for a merged
    pair, see ``merge_conv_groups``)."""
    return sum(b in CONV_ANCHORS for b in blocks)


def kernel_calls(mod: tvm.IRModule, func: str = "main") -> list[str]:
    """Names of the PrimFuncs ``func`` calls through ``call_tir``, one entry per call site."""
    calls: list[str] = []
    call_tir = tvm.ir.Op.get("relax.call_tir")

    def visit(expr: relax.Expr) -> None:
        if isinstance(expr, relax.Call) and expr.op.same_as(call_tir):
            calls.append(expr.args[0].name_hint)

    relax.analysis.post_order_visit(mod[func], visit)
    return calls
