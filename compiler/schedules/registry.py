"""Pick a rule for every PrimFunc of a module and apply it with the default or a tuned config."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import tvm
from tvm import s_tir

from edgeprune.base.errors import EdgepruneError, last_line
from edgeprune.compiler.schedules.base import Config, NotApplicable, ScheduleRule, Workload
from edgeprune.compiler.schedules.cpu import cpu_rules
from edgeprune.compiler.target import Hardware


@dataclass(frozen=True)
class ScheduledFunc:
    """How one PrimFunc was scheduled (recorded in the artifact's meta.json)."""

    func: str
    rule: str
    workload: str
    config: Config
    tuned: bool
    fallback: str | None = None  # why the matched rule was not used, if it was not
    default: Config | None = None  # the rule's default, next to the tuned config that replaced it

    def to_json(self) -> dict[str, Any]:
        record = {"func": self.func, "rule": self.rule, "workload": self.workload, "config": self.config, "tuned": self.tuned}
        if self.fallback:
            record["fallback"] = self.fallback
        if self.default is not None:
            record["default"] = self.default
        return record


def match(rules: list[ScheduleRule], func: tvm.tirx.PrimFunc) -> tuple[ScheduleRule, Workload]:
    """The first rule that matches ``func`` (the last rule, ``Generic``, matches everything)."""
    for rule in rules:
        workload = rule.matches(func)
        if workload is not None:
            return rule, workload
    raise AssertionError("the generic rule matches every PrimFunc")


def tasks(mod: tvm.IRModule, hw: Hardware) -> dict[str, tuple[ScheduleRule, Workload]]:
    """Rule and workload of every PrimFunc, by function name (what a tuner iterates over)."""
    rules = cpu_rules(hw)
    return {
        gv.name_hint: match(rules, func)
        for gv, func in mod.functions.items()
        if isinstance(func, tvm.tirx.PrimFunc)
    }


def apply_rule(func: tvm.tirx.PrimFunc, rule: ScheduleRule, workload: Workload, config: Config) -> tvm.tirx.PrimFunc:
    sch = s_tir.Schedule(func)
    rule.apply(sch, workload, config)
    return sch.mod["main"]


def schedule_module(
    mod: tvm.IRModule, hw: Hardware, tuning_configs: dict[str, Config] | None = None
) -> tuple[tvm.IRModule, list[ScheduledFunc]]:
    """A copy of ``mod`` with every PrimFunc scheduled; ``tuning_configs`` maps workload keys
    to (partial) configs.

    A rule that cannot handle a function it matched (its epilogue does not tile, say) falls
    back to the generic rule, and that is recorded; a bad tuned config is a user error.
    """
    tuning_configs = tuning_configs or {}
    mod = tvm.IRModule(dict(mod.functions), mod.attrs, mod.global_infos)
    rules = cpu_rules(hw)
    generic = rules[-1]
    records = []
    for gv, func in list(mod.functions.items()):
        if not isinstance(func, tvm.tirx.PrimFunc):
            continue
        rule, workload = match(rules, func)
        tuned = workload.key in tuning_configs
        try:
            config = rule.check_config(workload, tuning_configs.get(workload.key, {}))
        except ValueError as exc:
            raise EdgepruneError(f"tuning config for {workload.key}: {exc}") from exc
        fallback = None
        try:
            scheduled = apply_rule(func, rule, workload, config)
        except (NotApplicable, RuntimeError) as exc:  # ScheduleError, TVM InternalError
            fallback = f"{rule.name}: {last_line(exc)}"
            warnings.warn(f"{gv.name_hint}: {fallback}; using the generic schedule", stacklevel=2)
            rule, workload = generic, generic.matches(func)
            config, tuned = generic.default(workload), False
            try:
                scheduled = apply_rule(func, rule, workload, config)
            except RuntimeError:
                scheduled, fallback = func, f"{fallback}; generic failed too, left unscheduled"
        mod[gv] = scheduled
        default = rule.default(workload) if tuned else None
        records.append(ScheduledFunc(gv.name_hint, rule.name, workload.key, config, tuned, fallback, default))
    return mod, records
