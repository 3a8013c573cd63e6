"""Merge a conv group into the conv group that alone reads its result: the machinery shared by
``fuse_expand_depthwise`` and ``fuse_depthwise_pointwise``.

Runs between ``FuseOps`` and ``FuseTIR``: groups are then Relax functions marked ``Primitive``
whose first ``call_tir`` is their conv. A producer group is merged into its consumer when the
consumer reads the producer's result as its first argument and nowhere else, nothing else reads
that result, the producer's other inputs are constants (weights, bias; not a residual branch),
and ``admit`` accepts the two convs' geometries. ``FuseTIR`` then makes the merged group one
PrimFunc holding both convs and their epilogues, for a rule that schedules the pair.

On a CPU target both convs' output rows must also be whole vectors of its width
(``whole_vector_rows``): the merged rules vectorise along rows, and a ragged row (the 56-, 28-,
14- and 7-column maps of a 224x224 backbone on 16 lanes) runs their bands as scalars, where the
two kernels apart do not (``conv1x1`` pads its flattened map to whole vectors, and the depthwise
conv's rows are widened by ``pad_conv_width``).
"""

from __future__ import annotations

from collections.abc import Callable

import tvm
from tvm import relax

from edgeprune.compiler.schedules.conv_analysis import ConvGeometry, analyze_conv
from edgeprune.compiler.target import hardware_of

Admit = Callable[[ConvGeometry, ConvGeometry], bool]  # (producer conv, consumer conv) -> merge?


def whole_vector_rows(lanes: int) -> Admit:
    """Pairs whose two convs' output rows are whole vectors of ``lanes``."""
    return lambda producer, consumer: producer.ow % lanes == 0 and consumer.ow % lanes == 0


def target_vector_lanes() -> int:
    """The current CPU target's vector width; 1 outside a CPU target (any row is whole)."""
    target = tvm.target.Target.current(allow_none=True)
    return hardware_of(target).vector_lanes if target is not None and target.kind.name == "llvm" else 1


def merge_conv_groups(name: str, admit: Admit) -> tvm.transform.Pass:
    """A module pass, named ``name``, merging the producer/consumer conv group pairs ``admit`` accepts
    whose rows are whole vectors of the current target (``whole_vector_rows``)."""

    def transform(mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
        whole_rows = whole_vector_rows(target_vector_lanes())
        admitted = lambda producer, consumer: whole_rows(producer, consumer) and admit(producer, consumer)  # noqa: E731
        builder = relax.BlockBuilder(mod)
        for gv, func in list(mod.functions.items()):
            if isinstance(func, relax.Function) and not _is_group(func):
                builder.update_func(gv, _rewrite_function(builder, mod, func, admitted))
        return relax.transform.DeadCodeElimination()(builder.get())

    return tvm.transform.module_pass(transform, opt_level=0, name=name)


def _conv_of(mod: tvm.IRModule, func: relax.Function) -> ConvGeometry | None:
    """Geometry of the conv a FuseOps group starts with, if it starts with one and holds no
    other (a group merged already holds two)."""
    call_tir = tvm.ir.Op.get("relax.call_tir")
    calls = [
        b.value for block in func.body.blocks for b in block.bindings
        if isinstance(b.value, relax.Call) and b.value.op.same_as(call_tir)
    ]
    convs = [analyze_conv(mod[call.args[0]]) for call in calls]
    if not calls or convs[0] is None or sum(c is not None for c in convs) != 1:
        return None
    return convs[0][0]


def _group(mod: tvm.IRModule, call: relax.Expr) -> relax.Function | None:
    """The FuseOps group ``call`` calls, if it is one."""
    if not (isinstance(call, relax.Call) and isinstance(call.op, tvm.ir.GlobalVar)):
        return None
    func = mod[call.op]
    return func if _is_group(func) else None


def _is_group(func: tvm.ir.BaseFunc) -> bool:
    """Whether ``func`` is a FuseOps group (a Relax function marked ``Primitive``)."""
    return isinstance(func, relax.Function) and func.attrs is not None and bool(func.attrs.get("Primitive"))


def _uses(func: relax.Function, var: relax.Var) -> int:
    """How many times ``func``'s body reads ``var``."""
    found: list[relax.Expr] = []
    relax.analysis.post_order_visit(func.body, lambda e: found.append(e) if e.same_as(var) else None)
    return len(found)


def _merge(producer: relax.Function, consumer: relax.Function) -> relax.Function:
    """One group computing ``consumer(producer(...), ...)``: the producer's params, then the
    consumer's params but its first (the producer's result)."""
    producer_params = [relax.Var(p.name, p.ty) for p in producer.params]
    rest_params = [relax.Var(p.name, p.ty) for p in consumer.params[1:]]
    inner = producer.bind_params(dict(zip(producer.params, producer_params, strict=True))).body
    outer = consumer.bind_params(
        {consumer.params[0]: inner.body, **dict(zip(consumer.params[1:], rest_params, strict=True))}
    ).body
    bindings = [b for block in (*inner.blocks, *outer.blocks) for b in block.bindings]
    body = relax.SeqExpr([relax.DataflowBlock(bindings)], outer.body)
    return relax.Function(producer_params + rest_params, body, consumer.ret_ty, is_pure=True).with_attr(
        "Primitive", True
    )


def _rewrite_function(
    builder: relax.BlockBuilder, mod: tvm.IRModule, func: relax.Function, admit: Admit
) -> relax.Function:
    blocks = [
        _rewrite_block(builder, mod, block, admit) if isinstance(block, relax.DataflowBlock) else block
        for block in func.body.blocks
    ]
    return relax.Function(func.params, relax.SeqExpr(blocks, func.body.body), func.ret_ty, func.is_pure,
                          func.attrs, func.span)


def _rewrite_block(
    builder: relax.BlockBuilder, mod: tvm.IRModule, block: relax.DataflowBlock, admit: Admit
) -> relax.DataflowBlock:
    users = relax.analysis.udchain(block)
    bound = {b.var: b for b in block.bindings}
    merged_producers: set[relax.Var] = set()
    replaced: dict[relax.Var, relax.VarBinding] = {}
    for binding in block.bindings:
        consumer = _group(mod, binding.value)
        if consumer is None or not binding.value.args or binding.value.args[0] not in bound:
            continue
        producer_binding = bound[binding.value.args[0]]
        producer = _group(mod, producer_binding.value)
        if (
            producer is None
            or producer_binding.var in replaced  # already a merged pair: pairs only
            or not isinstance(producer_binding.var, relax.DataflowVar)  # also an output of the block
            or len(users.get(producer_binding.var, [])) != 1
            or _uses(consumer, consumer.params[0]) != 1  # also read by its epilogue, e.g. ``dw(y) + y``
            or not all(isinstance(a, tvm.ir.expr.Constant) for a in producer_binding.value.args[1:])
        ):
            continue
        producer_conv, consumer_conv = _conv_of(mod, producer), _conv_of(mod, consumer)
        if producer_conv is None or consumer_conv is None or not admit(producer_conv, consumer_conv):
            continue
        name = f"{producer_binding.value.op.name_hint}__{binding.value.op.name_hint}"
        merged = builder.add_func(_merge(producer, consumer), name)
        call = builder.normalize(relax.Call(merged, [*producer_binding.value.args, *binding.value.args[1:]]))
        replaced[binding.var] = relax.VarBinding(binding.var, call)
        merged_producers.add(producer_binding.var)
    bindings = [replaced.get(b.var, b) for b in block.bindings if b.var not in merged_producers]
    return relax.DataflowBlock(bindings, block.span)
