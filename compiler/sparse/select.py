"""Per-layer choice between the dense conv kernel and the grouped sparse one, by measured speed.

``sparsify`` runs on the fused module (after ``compiler.build.fuse``): every ``call_tir`` of a
groups=1 float32 conv whose weight is a constant with at least ``min_zero`` of its GEMM-view
entries exactly zero is a candidate. Its weight is reordered and encoded
(``reorder``/``format``), the sparse PrimFunc is built with the fused epilogue
(``lower``), both kernels are scheduled (default or tuned configs) and timed here on the
same inputs, alternating, and the faster one is kept. A call that goes sparse is rewritten to
``call_tir(sparse_func, (data, values, col_indices, row_order, *epilogue inputs))``; the
weights become those constants. Every candidate's measurement and choice is returned, for
``meta.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tvm
from tvm import relax

from edgeprune.base.errors import EdgepruneError
from edgeprune.base.progress import Progress
from edgeprune.base.timing import alternate_timers, medians
from edgeprune.compiler.kernel_timer import kernel_timer
from edgeprune.compiler.schedules.base import Config, NotApplicable
from edgeprune.compiler.schedules.registry import match, rules_for
from edgeprune.compiler.sparse import format as fmt
from edgeprune.compiler.sparse.kernel import Structure, kernel_args, sparse_conv_func
from edgeprune.compiler.sparse.lower import dense_conv, zero_fraction
from edgeprune.compiler.sparse.reorder import reorder

ROUNDS = 5
CALLS_PER_ROUND = 5


@dataclass
class SparseChoice:
    """One candidate conv: how sparse, how fast each way, and what was kept."""

    func: str
    zero_fraction: float
    chosen: str  # "sparse" | "dense"
    groups: int = 0
    dense_ms: float | None = None
    sparse_ms: float | None = None
    sparse_func: str | None = None
    dense_bytes: int = 0
    sparse_bytes: int = 0
    reason: str | None = None  # why the sparse kernel was not tried

    def to_json(self) -> dict[str, Any]:
        record = {k: v for k, v in self.__dict__.items() if v is not None}
        record["zero_fraction"] = round(self.zero_fraction, 4)
        for key in ("dense_ms", "sparse_ms"):
            if key in record:
                record[key] = round(record[key], 4)
        return record


@dataclass
class SparseOption:
    """The ``sparse`` option of a build: try convs with at least ``min_zero`` zero weights sparse.

    The build fills ``choices`` (one ``SparseChoice`` per candidate) for the artifact's meta.
    ``force`` keeps every candidate sparse whatever the timing (for the smaller weights).
    """

    min_zero: float = 0.5
    force: bool = False
    choices: list[SparseChoice] = field(default_factory=list)


def sparsify(
    mod: tvm.IRModule, target: tvm.target.Target, min_zero: float = 0.5,
    tuning_configs: dict[str, Config] | None = None, force: bool = False,
) -> tuple[tvm.IRModule, list[SparseChoice]]:
    """``mod`` with the convs that run faster sparse rewritten to the sparse kernel; the choices."""
    rules = rules_for(target)
    configs = tuning_configs or {}
    call_tir = tvm.ir.Op.get("relax.call_tir")
    choices: list[SparseChoice] = []
    swaps: list[_Swap] = []
    sites: list[relax.Call] = []

    def visit(expr: relax.Expr) -> None:
        if isinstance(expr, relax.Call) and expr.op.same_as(call_tir) and isinstance(mod[expr.args[0]], tvm.tirx.PrimFunc):
            sites.append(expr)

    relax.analysis.post_order_visit(mod["main"], visit)
    with Progress(len(sites), "sparse or dense") as progress:
        for call in sites:
            choice = _consider(mod, call, rules, configs, target, min_zero, force, swaps)
            if choice is not None:
                choices.append(choice)
            progress.update(sparse=sum(c.chosen == "sparse" for c in choices))
    if swaps:
        mod = _Rewriter(mod, swaps).rewrite()
        mod = relax.transform.DeadCodeElimination(["main"])(mod)
    return mod, choices


def _consider(mod, call, rules, configs, target, min_zero: float, force: bool, swaps: list) -> SparseChoice | None:
    """Measure one call site both ways if its conv is a candidate; queue its swap if sparse is kept."""
    name = call.args[0].name_hint
    func = mod[call.args[0]]
    try:
        conv = dense_conv(func)
    except NotApplicable:
        return None
    args = list(call.args[1].fields)
    weight = args[conv.weight_index]
    if not isinstance(weight, tvm.ir.expr.Constant):
        return None
    matrix = weight.value.numpy()
    fraction = zero_fraction(matrix)
    if fraction < min_zero:
        return None
    choice = SparseChoice(name, fraction, "dense", dense_bytes=int(matrix.nbytes))
    sparse = fmt.encode(matrix, reorder(matrix))
    try:
        sparse_func = sparse_conv_func(conv.geometry, Structure.of(sparse), conv.epilogue)
    except (NotApplicable, ValueError) as exc:
        choice.reason = str(exc)
        return choice
    inputs = [a.value.numpy() if isinstance(a, tvm.ir.expr.Constant) else _random(p) for a, p in zip(args, func.params)]
    sparse_inputs = [inputs[conv.data_index], *kernel_args(sparse), *(inputs[i] for i in conv.extra_indices)]
    dense_lib = _compiled(func, rules, configs, target)
    sparse_lib = _compiled(sparse_func, rules, configs, target)
    out_shape = [int(d) for d in func.params[-1].shape]
    choice.dense_ms, choice.sparse_ms = _alternate([(dense_lib, inputs), (sparse_lib, sparse_inputs)], out_shape)
    choice.groups, choice.sparse_bytes = sparse.num_groups, sparse.nbytes
    if force or choice.sparse_ms < choice.dense_ms:
        new_args = [args[conv.data_index], *(relax.const(a) for a in kernel_args(sparse)), *(args[i] for i in conv.extra_indices)]
        swaps.append(_Swap(call, sparse_func, f"{name}_sparse", new_args, choice))
        choice.chosen = "sparse"
    return choice


def _random(param) -> np.ndarray:
    return np.random.default_rng(0).standard_normal([int(d) for d in param.shape]).astype(str(param.dtype))


def _compiled(func: tvm.tirx.PrimFunc, rules, configs: dict[str, Config], target):
    rule, workload = match(rules, func)
    try:
        config = rule.check_config(workload, configs.get(workload.key, {}))
    except ValueError as exc:
        raise EdgepruneError(f"tuning config for {workload.key}: {exc}") from exc
    scheduled = rule.schedule(func, workload, config).with_attr("global_symbol", "main")
    return tvm.compile(tvm.IRModule({"main": scheduled}), target)


def _alternate(kernels: list[tuple[Any, list[np.ndarray]]], out_shape: list[int]) -> list[float]:
    """Median ms per call of each kernel, timed in turn every round."""

    timers = {}
    for i, (lib, inputs) in enumerate(kernels):
        args = [tvm.runtime.tensor(np.ascontiguousarray(a)) for a in inputs]
        args.append(tvm.runtime.tensor(np.zeros(out_shape, np.float32)))
        timers[i] = kernel_timer(lib, args, CALLS_PER_ROUND)
    return list(medians(alternate_timers(timers, ROUNDS)).values())


@dataclass(frozen=True)
class _Swap:
    call: relax.Call  # the dense call_tir node to replace
    func: tvm.tirx.PrimFunc
    name: str
    args: list[relax.Expr]
    choice: SparseChoice


@relax.expr_functor.mutator
class _Rewriter(relax.PyExprMutator):
    """Add each sparse PrimFunc to the module and call it in place of its dense call."""

    def __init__(self, mod: tvm.IRModule, swaps: list[_Swap]) -> None:
        super().__init__(mod)
        self.mod_ = mod
        self.swaps = swaps

    def rewrite(self) -> tvm.IRModule:
        self.builder_.update_func(self.mod_.get_global_var("main"), self.visit_expr(self.mod_["main"]))
        return self.builder_.get()

    def visit_call_(self, call: relax.Call) -> relax.Expr:
        for swap in self.swaps:
            if swap.call.same_as(call):
                gv = self.builder_.add_func(swap.func, swap.name)
                swap.choice.sparse_func = gv.name_hint
                return relax.call_tir(gv, swap.args, call.ty_args[0])
        return super().visit_call_(call)
