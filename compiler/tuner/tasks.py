"""The distinct workloads of a model: what ``edgeprune tune`` tunes, and how often each runs.

The model goes through the same import and fusion as ``compile`` (``compiler.build.fuse``),
every PrimFunc is matched to its rule (``registry.tasks``), and PrimFuncs with the same
workload key become one task, with the number of times the model calls them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from edgeprune.compiler.build import fuse
from edgeprune.compiler.frontend import import_model
from edgeprune.compiler.passes.structure import kernel_calls
from edgeprune.compiler.schedules.base import Rule, Workload
from edgeprune.compiler.schedules.registry import rules_for
from edgeprune.compiler.schedules.registry import tasks as rule_tasks
from edgeprune.compiler.sparse.select import sparsify
from edgeprune.compiler.target import make_target
from edgeprune.compiler.tuner.measure import Kernel, kernel_of
from edgeprune.compiler.tuner.space import SearchSpace


@dataclass
class Task:
    rule: Rule
    workload: Workload
    kernel: Kernel
    calls: int  # call sites in the model

    @property
    def key(self) -> str:
        return self.workload.key

    @cached_property
    def space(self) -> SearchSpace:
        return SearchSpace(self.rule, self.workload)

    @property
    def flops(self) -> float | None:
        """FLOPs of one call, where the rule knows them."""
        return self.rule.flops(self.workload)

    @property
    def label(self) -> str:
        """The rule's short name of the workload, for tables and progress lines."""
        return self.rule.short_name(self.workload)


def model_tasks(
    src: str | os.PathLike[str], target: dict[str, Any], input_shape: Sequence[int] | None = None,
    sparse: float | None = None,
) -> list[Task]:
    """One task per distinct workload of the model at ``src``, in first-call order.

    With ``sparse`` (a zero fraction, as ``compile --sparse`` takes it), every conv at least that
    sparse becomes a grouped sparse kernel first, so its knobs are tuned too; ``compile`` then
    measures the tuned sparse kernel against the tuned dense one.
    """

    tvm_target = make_target(target)
    mod = fuse(import_model(src, input_shape), tvm_target)
    if sparse is not None:

        mod, _ = sparsify(mod, tvm_target, sparse, force=True)
    calls = kernel_calls(mod)
    by_func = rule_tasks(mod, rules_for(tvm_target))
    found: dict[str, Task] = {}
    for func in calls:
        rule, wl = by_func[func]
        if wl.key not in found:
            found[wl.key] = Task(rule, wl, kernel_of(rule, wl, mod[func]), 0)
        found[wl.key].calls += 1
    return list(found.values())


def select_tasks(tasks: list[Task], patterns: Sequence[str] | None) -> list[Task]:
    """Tasks whose key equals a pattern, or whose op name or rule name does; all if none given."""
    if not patterns:
        return tasks
    return [t for t in tasks if any(p in (t.key, t.workload.op, t.rule.name) for p in patterns)]
