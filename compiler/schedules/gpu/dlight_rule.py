"""A dlight ``ScheduleRule`` (TVM's or edgeprune's) behind edgeprune's rule interface.

dlight rules have no separate matching step: ``apply(func, target, tunable)`` returns a
schedule, or ``None`` when the PrimFunc is not the rule's kind. Here that ``None`` is
``DoesNotMatch`` (the registry tries the next rule), a rule that breaks is ``NotApplicable``
with TVM's message, and a schedule with more threads per block than the target allows is
refused (dlight's Matmul and GEMV use fixed tiles). The rules have no knobs yet: the space is
empty and the default is the rule's own choice.
"""

from __future__ import annotations

import math

import tvm
import tvm_ffi
from tvm import tirx
from tvm.s_tir import dlight as dl

from edgeprune.base.errors import last_line
from edgeprune.compiler.schedules.base import Config, DoesNotMatch, NotApplicable, Rule, Space, Workload, output_workload


def threads_per_block(func: tirx.PrimFunc) -> int:
    """The most threads a block of ``func`` can have: the product, over threadIdx.x/y/z, of the
    largest extent bound to each (an upper bound when the function launches several kernels)."""
    extents: dict[str, int] = {}

    def visit(loop: tirx.For) -> None:
        tag = str(loop.thread_binding.thread_tag) if loop.thread_binding is not None else ""
        if tag.startswith("threadIdx.") and isinstance(loop.extent, tirx.IntImm):
            extents[tag] = max(extents.get(tag, 1), int(loop.extent))

    tvm_ffi.structural_walk(func.body, [(tirx.For, visit)], order="post")
    return math.prod(extents.values())


def rule_name(rule: dl.ScheduleRule) -> str:
    """``dlight.adreno.Conv2d``, ``dlight.gpu.Matmul``, ``edgeprune.SmallReduction``."""
    module = type(rule).__module__
    if module.startswith("edgeprune."):
        return f"edgeprune.{type(rule).__name__}"
    return f"dlight.{'adreno' if '.adreno' in module else 'gpu'}.{type(rule).__name__}"


class DlightRule(Rule):
    """``rule`` applied for ``target``, within its ``max_threads_per_block``."""

    def __init__(self, rule: dl.ScheduleRule, target: tvm.target.Target) -> None:
        self.rule = rule
        self.target = target
        self.name = rule_name(rule)
        self.max_threads = int(target.attrs.get("max_threads_per_block", 0))

    def matches(self, func: tirx.PrimFunc) -> Workload | None:
        """Every PrimFunc: whether dlight takes it shows only when ``schedule`` tries."""
        return output_workload("gpu_kernel", func)

    def space(self, wl: Workload) -> Space:
        return {}

    def default(self, wl: Workload) -> Config:
        return {}

    def schedule(self, func: tirx.PrimFunc, wl: Workload, config: Config) -> tirx.PrimFunc:
        try:
            with self.target:
                sch = self.rule.apply(func, self.target, False)
        except (RuntimeError, ValueError, AssertionError) as exc:  # a rule that matched but broke
            raise NotApplicable(last_line(exc)) from exc
        if sch is None:
            raise DoesNotMatch(self.name)
        scheduled = (sch[0] if isinstance(sch, list) else sch).mod["main"]
        threads = threads_per_block(scheduled)
        if self.max_threads and threads > self.max_threads:
            raise NotApplicable(f"{threads} threads per block > {self.max_threads}")
        return scheduled.with_attr("tirx.is_scheduled", True)
