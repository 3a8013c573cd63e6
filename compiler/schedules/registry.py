"""The one registry of schedule rules: ``rules_for(target)``, and a module scheduled with them.

As in dlight's ``ApplyDefaultSchedule(*rules)``, rules are tried in order and the rule list is
a value: ``compile`` and the tuner take ``rules_for(target)``, and tests or benchmarks pass
their own list instead. Each PrimFunc goes to the first rule that matches and schedules it
with the default or a tuned config; a rule that cannot (``NotApplicable``, a TVM error) is
recorded and the next matching rule takes the function. The last rule of every list (CPU
``Generic``, GPU ``Fallback``) matches everything.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import tvm

from edgeprune.base.errors import EdgepruneError, last_line
from edgeprune.compiler.schedules.base import Config, DoesNotMatch, NotApplicable, Rule, Workload
from edgeprune.compiler.schedules.cpu import cpu_rules
from edgeprune.compiler.schedules.gpu import gpu_rules
from edgeprune.compiler.target import hardware_of


@dataclass(frozen=True)
class ScheduledFunc:
    """How one PrimFunc was scheduled (recorded in the artifact's meta.json)."""

    func: str
    rule: str
    workload: str
    config: Config
    tuned: bool
    fallback: str | None = None  # why earlier matching rules were not used, if they were not
    default: Config | None = None  # the rule's default, next to the tuned config that replaced it
    scheduled: bool = True  # False: every matching rule failed, the function is left as it was

    def to_json(self) -> dict[str, Any]:
        record = {"func": self.func, "rule": self.rule, "workload": self.workload, "config": self.config, "tuned": self.tuned}
        if self.fallback:
            record["fallback"] = self.fallback
        if self.default is not None:
            record["default"] = self.default
        return record


def rules_for(target: tvm.target.Target) -> list[Rule]:
    """The rules of ``target``, most specific first: the CPU rules for LLVM targets (tuned to
    the target's vector width and cores), the GPU rules for the others."""
    if target.kind.name == "llvm":
        return list(cpu_rules(hardware_of(target)))
    return list(gpu_rules(target))


def match(rules: Sequence[Rule], func: tvm.tirx.PrimFunc) -> tuple[Rule, Workload]:
    """The first rule that matches ``func`` (the last rule of every list matches everything)."""
    for rule in rules:
        workload = rule.matches(func)
        if workload is not None:
            return rule, workload
    raise AssertionError("the last rule of a rule list matches every PrimFunc")


def tasks(mod: tvm.IRModule, rules: Sequence[Rule]) -> dict[str, tuple[Rule, Workload]]:
    """Rule and workload of every PrimFunc, by function name (what a tuner iterates over)."""
    return {
        gv.name_hint: match(rules, func)
        for gv, func in mod.functions.items()
        if isinstance(func, tvm.tirx.PrimFunc)
    }


def _schedule_one(name: str, func: tvm.tirx.PrimFunc, rules: Sequence[Rule],
                  tuning_configs: dict[str, Config]) -> tuple[tvm.tirx.PrimFunc, ScheduledFunc]:
    failures = []
    for rule in rules:
        workload = rule.matches(func)
        if workload is None:
            continue
        tuned = workload.key in tuning_configs and not failures
        try:
            config = rule.check_config(workload, tuning_configs.get(workload.key, {}) if tuned else {})
        except ValueError as exc:
            raise EdgepruneError(f"tuning config for {workload.key}: {exc}") from exc
        try:
            scheduled = rule.schedule(func, workload, config)
        except DoesNotMatch:
            continue
        except (NotApplicable, RuntimeError) as exc:  # ScheduleError, TVM InternalError
            failures.append(f"{rule.name}: {last_line(exc)}")
            continue
        fallback = "; ".join(failures) or None
        if fallback:
            warnings.warn(f"{name}: {fallback}; scheduled by {rule.name}", stacklevel=3)
        default = rule.default(workload) if tuned else None
        return scheduled, ScheduledFunc(name, rule.name, workload.key, config, tuned, fallback, default)
    fallback = "; ".join(failures) or "no rule matched"
    warnings.warn(f"{name}: {fallback}; left unscheduled", stacklevel=3)
    return func, ScheduledFunc(name, "none", name, {}, False, f"{fallback}; left unscheduled", scheduled=False)


def schedule_module(
    mod: tvm.IRModule, rules: Sequence[Rule], tuning_configs: dict[str, Config] | None = None
) -> tuple[tvm.IRModule, list[ScheduledFunc]]:
    """A copy of ``mod`` with every PrimFunc scheduled by ``rules``; ``tuning_configs`` maps
    workload keys to (partial) configs. A bad tuned config is a user error."""
    tuning_configs = tuning_configs or {}
    mod = tvm.IRModule(dict(mod.functions), mod.attrs, mod.global_infos)
    records = []
    for gv, func in list(mod.functions.items()):
        if isinstance(func, tvm.tirx.PrimFunc):
            mod[gv], record = _schedule_one(gv.name_hint, func, rules, tuning_configs)
            records.append(record)
    return mod, records
