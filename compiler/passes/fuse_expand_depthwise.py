"""Merge an inverted residual's expand (1x1 conv) group into the depthwise group that reads it.

MobileNetV2-style blocks (TopFormer's token pyramid, DeepLabV3+'s backbone) compute
``expand = act(conv1x1(x) + b)`` with 4-6x the input's channels at full resolution, and a
depthwise conv then reads it once. As two kernels the expanded map goes through memory in full:
16.7 MB written and read back in TopFormer-Tiny's first stage at 512x512. In one kernel
(``compiler.schedules.cpu.expand_depthwise``) each task computes the expanded rows a band of
depthwise outputs needs into a small buffer and consumes them while they are in cache.

Runs between ``FuseOps`` and ``FuseTIR``: both groups are then Relax functions marked
``Primitive`` whose first ``call_tir`` is the conv. A pair is merged when the pointwise group's
result is read only by the depthwise group and its other inputs are constants (weights, bias;
not a residual branch), so the merged group's ``FuseTIR`` PrimFunc holds both convs and their
epilogues, and nothing else.

Which blocks are merged (``MergeLimits``): those whose expanded map has at most 128x128 pixels,
and at any size those whose expand reads at most 16 channels. Such an expand does 2 x 16 flops
per 4-byte element it writes, so writing the expanded map out and reading it back is most of
its cost, and that is what merging saves. DeepLabV3+'s large-map blocks with 24-32 input
channels (128x256 and up) lose when merged. The measurements behind the limits: whole models
at 512x512 (DeepLabV3+ 512x1024), builds with different limits alternating in one run, 2
threads, ratio to ONNX Runtime (compare within a run: the machine's load varies between runs,
and the merge, saving memory traffic, pays most when other tenants load the memory bus).

- merge none vs all: Tiny 1.096 vs 1.040, Base 1.145 vs 1.139, DeepLabV3+ 1.026 vs 1.139;
- none vs up to 64x64: Tiny 1.121 vs 1.097, DeepLabV3+ 1.014 vs 0.990;
- 64x64 vs 128x128: Tiny 1.054 vs 1.007, Base 1.149 vs 1.151, DeepLabV3+ 1.034 vs 1.038;
- 64x64 vs 128x128 vs 256x256: Tiny 1.062 vs 1.005 vs 1.002.

Then with the merged kernel's store unrolled and stride-2 bands copied without de-interleaving:

- none vs 128x128 vs 256x256: Tiny 1.165 vs 1.190 vs 1.127 (a quiet machine, ORT at 8.5 ms);
- 128x128 vs 256x256: DeepLabV3+ 1.058 vs 1.110 (all 10 rounds agree);
- none vs 128x128 vs all: DeepLabV3+ 1.002 vs 1.013 vs 1.033;
- none vs 128x128 vs 128x128 plus at most 16 input channels at any size (Tiny's 16->64 at
  256x256, DeepLabV3+'s 16->96 at 256x512; 20-40 rounds): Tiny 1.114 vs 1.058 vs 1.036,
  DeepLabV3+ 1.046 vs 1.024 vs 0.993 (all blocks: 1.063), Base 1.154 vs 1.162 vs 1.139,
  pruned TopFormer 0.868 vs 0.876 vs 0.872.

With stride-2 blocks computed on de-interleaved columns: these limits vs merging all blocks,
DeepLabV3+ 0.978 vs 1.026.
"""

from __future__ import annotations

from dataclasses import dataclass

import tvm
from tvm import relax

from compiler.schedules.conv_analysis import ConvGeometry, analyze_conv


@dataclass(frozen=True)
class MergeLimits:
    """Which expand/depthwise pairs are worth one kernel (measurements in the module docstring)."""

    max_pixels: int = 128 * 128  # expanded maps up to this size, whatever the channels
    any_size_max_cin: int = 16  # expands reading at most this many channels, at any size

    def admit(self, expand: ConvGeometry) -> bool:
        return expand.oh * expand.ow <= self.max_pixels or expand.ci <= self.any_size_max_cin


def _conv_of(mod: tvm.IRModule, func: relax.Function) -> ConvGeometry | None:
    """Geometry of the conv a FuseOps group starts with, if it starts with one."""
    block = func.body.blocks[0] if func.body.blocks else None
    if block is None or not block.bindings:
        return None
    value = block.bindings[0].value
    if not (isinstance(value, relax.Call) and value.op.same_as(tvm.ir.Op.get("relax.call_tir"))):
        return None
    found = analyze_conv(mod[value.args[0]])
    return found[0] if found else None


def _group(mod: tvm.IRModule, call: relax.Expr) -> relax.Function | None:
    """The FuseOps group ``call`` calls, if it is one."""
    if not (isinstance(call, relax.Call) and isinstance(call.op, tvm.ir.GlobalVar)):
        return None
    func = mod[call.op]
    if isinstance(func, relax.Function) and func.attrs is not None and func.attrs.get("Primitive"):
        return func
    return None


def _uses(func: relax.Function, var: relax.Var) -> int:
    """How many times ``func``'s body reads ``var``."""
    found: list[relax.Expr] = []
    relax.analysis.post_order_visit(func.body, lambda e: found.append(e) if e.same_as(var) else None)
    return len(found)


def _merge(expand: relax.Function, depthwise: relax.Function) -> relax.Function:
    """One group computing ``depthwise(expand(...), ...)``: the expand's params, then the
    depthwise's params but its first (the expanded map)."""
    expand_params = [relax.Var(p.name, p.ty) for p in expand.params]
    rest_params = [relax.Var(p.name, p.ty) for p in depthwise.params[1:]]
    inner = expand.bind_params(dict(zip(expand.params, expand_params, strict=True))).body
    outer = depthwise.bind_params(
        {depthwise.params[0]: inner.body, **dict(zip(depthwise.params[1:], rest_params, strict=True))}
    ).body
    bindings = [b for block in (*inner.blocks, *outer.blocks) for b in block.bindings]
    body = relax.SeqExpr([relax.DataflowBlock(bindings)], outer.body)
    return relax.Function(expand_params + rest_params, body, depthwise.ret_ty, is_pure=True).with_attr(
        "Primitive", True
    )


def FuseExpandDepthwise(limits: MergeLimits = MergeLimits()) -> tvm.transform.Pass:  # noqa: N802 - pass naming
    """Merge the expand/depthwise group pairs ``limits`` admits."""

    def transform(mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
        builder = relax.BlockBuilder(mod)
        for gv, func in list(mod.functions.items()):
            if isinstance(func, relax.Function) and not (func.attrs is not None and func.attrs.get("Primitive")):
                builder.update_func(gv, _rewrite_function(builder, mod, func, limits))
        return relax.transform.DeadCodeElimination()(builder.get())

    return tvm.transform.module_pass(transform, opt_level=0, name="FuseExpandDepthwise")


def _rewrite_function(
    builder: relax.BlockBuilder, mod: tvm.IRModule, func: relax.Function, limits: MergeLimits
) -> relax.Function:
    blocks = [
        _rewrite_block(builder, mod, block, limits) if isinstance(block, relax.DataflowBlock) else block
        for block in func.body.blocks
    ]
    return relax.Function(func.params, relax.SeqExpr(blocks, func.body.body), func.ret_ty, func.is_pure,
                          func.attrs, func.span)


def _mergeable(expand: ConvGeometry | None, depthwise: ConvGeometry | None, limits: MergeLimits) -> bool:
    """Whether ``schedules.cpu.expand_depthwise`` takes this pair and merging it pays."""
    return (
        expand is not None and depthwise is not None and expand.pointwise and depthwise.depthwise
        and depthwise.padded  # the rule builds its band in the padding block
        and depthwise.ow > 1  # the rule's schedule fails on one-column outputs (TopFormer at 64x64)
        and limits.admit(expand)
    )


def _rewrite_block(
    builder: relax.BlockBuilder, mod: tvm.IRModule, block: relax.DataflowBlock, limits: MergeLimits
) -> relax.DataflowBlock:
    users = relax.analysis.udchain(block)
    bound = {b.var: b for b in block.bindings}
    merged_producers: set[relax.Var] = set()
    replaced: dict[relax.Var, relax.VarBinding] = {}
    for binding in block.bindings:
        depthwise = _group(mod, binding.value)
        if depthwise is None or not binding.value.args or binding.value.args[0] not in bound:
            continue
        producer = bound[binding.value.args[0]]
        expand = _group(mod, producer.value)
        if (
            expand is None
            or not isinstance(producer.var, relax.DataflowVar)  # also an output of the block
            or len(users.get(producer.var, [])) != 1
            or _uses(depthwise, depthwise.params[0]) != 1  # also read by its epilogue, e.g. ``dw(y) + y``
            or not all(isinstance(a, tvm.ir.expr.Constant) for a in producer.value.args[1:])
            or not _mergeable(_conv_of(mod, expand), _conv_of(mod, depthwise), limits)
        ):
            continue
        name = f"{producer.value.op.name_hint}__{binding.value.op.name_hint}"
        merged = builder.add_func(_merge(expand, depthwise), name)
        call = builder.normalize(relax.Call(merged, [*producer.value.args, *binding.value.args[1:]]))
        replaced[binding.var] = relax.VarBinding(binding.var, call)
        merged_producers.add(producer.var)
    bindings = [replaced.get(b.var, b) for b in block.bindings if b.var not in merged_producers]
    return relax.DataflowBlock(bindings, block.span)
