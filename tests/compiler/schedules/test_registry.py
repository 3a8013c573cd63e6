"""Rule selection, configs, workload keys, and the fallback to the generic schedule."""

from __future__ import annotations

import subprocess
import sys

import pytest
import tvm
from tvm import relax

from edgeprune.compiler.build import fuse
from edgeprune.compiler.frontend import import_model
from edgeprune.compiler.schedules import registry
from edgeprune.compiler.schedules.base import NotApplicable, Rule
from edgeprune.compiler.schedules.cpu import Generic, cpu_rules
from edgeprune.compiler.schedules.cpu.conv1x1 import Conv1x1
from edgeprune.compiler.target import hardware_of, make_target
from edgeprune.compiler.targets import resolve_target
from tests.compiler.schedules.cases import RULES, TARGET, conv, prim_func


@pytest.fixture(scope="module")
def user_module(user_checkpoint):
    return fuse(import_model(user_checkpoint), TARGET)


def test_every_kernel_gets_a_rule_and_module_is_not_mutated(user_module):
    before = {gv.name_hint: f for gv, f in user_module.functions.items()}
    scheduled, records = registry.schedule_module(user_module, RULES)
    assert {r.func for r in records} == set(registry.tasks(user_module, RULES))
    assert all(r.fallback is None for r in records)
    assert all(user_module[name].same_as(func) for name, func in before.items())
    assert not any(scheduled[r.func].same_as(before[r.func]) for r in records)


def test_check_config_fills_defaults_and_rejects_values_outside_the_space():
    rule, workload = registry.match(RULES, prim_func(conv(16, 32, 1), (1, 16, 8, 8)))
    assert rule.check_config(workload, {"tile_co": 4})["tile_co"] == 4
    with pytest.raises(ValueError, match="tile_co"):
        rule.check_config(workload, {"tile_co": 5})
    with pytest.raises(ValueError, match="unknown knob"):
        rule.check_config(workload, {"tiles": 4})


class BrokenConv1x1(Conv1x1):
    def apply(self, sch, wl, config):
        raise NotApplicable("epilogue does not tile")


def test_rule_that_cannot_apply_falls_back_to_the_next_matching_rule(user_module):
    hw = hardware_of(TARGET)
    with pytest.warns(UserWarning, match="scheduled by generic"):
        _, records = registry.schedule_module(user_module, [BrokenConv1x1(hw), Generic(hw)])
    fell_back = [r for r in records if r.fallback]
    assert fell_back and all(r.rule == "generic" and "epilogue does not tile" in r.fallback for r in fell_back)


def test_workload_keys_are_stable_across_processes():
    code = (
        "from tests.compiler.schedules.cases import RULES, prim_func, conv\n"
        "from edgeprune.compiler.schedules.registry import match\n"
        "from tvm import relax\n"
        "print(match(RULES, prim_func(conv(16, 32, 1), (1, 16, 8, 8)))[1].key)\n"
        "print(match(RULES, prim_func(lambda x: relax.op.sigmoid(x), (2, 9)))[1].key)\n"
    )
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout for _ in range(2)]
    assert runs[0] == runs[1]
    conv_key, generic_key = runs[0].split()
    assert conv_key.startswith("conv2d_1x1(n=1,ci=16,h=8,w=8,co=32,") and conv_key.endswith(":float32")
    assert generic_key.startswith("generic(d0=2,d1=9,hash=")


def test_cpu_rules_end_with_generic():
    rules = cpu_rules(hardware_of(TARGET))
    assert isinstance(rules[-1], Generic) and len({r.name for r in rules}) == len(rules)


def test_rules_for_gives_every_target_its_rules_under_one_interface():
    cpu = registry.rules_for(TARGET)
    gpu = registry.rules_for(make_target(resolve_target("adreno660")))
    assert isinstance(cpu[-1], Generic) and gpu[-1].name == "dlight.gpu.Fallback"
    assert "edgeprune.SmallReduction" in {r.name for r in gpu}
    assert all(isinstance(r, Rule) for r in cpu + gpu)


def test_a_gpu_rule_that_does_not_take_a_function_passes_it_on_silently():
    gpu = registry.rules_for(make_target(resolve_target("adreno660")))
    func = prim_func(lambda x: relax.op.sigmoid(x), (2, 9))
    scheduled, records = registry.schedule_module(tvm.IRModule({"main": func}), gpu)
    (record,) = records
    assert record.scheduled and record.fallback is None and record.rule.startswith("dlight.gpu.")
    assert scheduled["main"].attrs["tirx.is_scheduled"]
