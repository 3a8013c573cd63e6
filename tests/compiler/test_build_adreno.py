"""The Adreno (OpenCL) build: every PrimFunc on the GPU within the target's limits, the kernel
files the check needs, edgeprune's own GPU rule, and the errors."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from edgeprune import compiler
from edgeprune.base.errors import EdgepruneError
from edgeprune.compiler.gpu_build import check_limits
from edgeprune.compiler.gpu_kernels import KernelInfo
from edgeprune.compiler.schedules.gpu import gpu_rules
from edgeprune.compiler.target import make_target
from edgeprune.compiler.targets import resolve_target
from edgeprune.device.opencl_check import check_artifact
from tests.compiler.checkpoints import make_checkpoint
from tests.device.adreno_artifact import user_adreno_artifact

SMALL_GPU = """
[targets.small-gpu]
extends = "adreno660"
tvm = { max_threads_per_block = 64 }
"""


class DepthwiseHead(nn.Module):
    """A 1x1 conv, then a depth-wise 1x1 conv + BN + ReLU: a reduction over one element, which
    TVM's dlight Fallback computes wrong (bias twice, ReLU on the partial sum)."""

    def __init__(self, num_classes: int = 5) -> None:
        super().__init__()
        self.expand = nn.Conv2d(3, 8, 1)
        self.depthwise = nn.Sequential(nn.Conv2d(8, 8, 1, groups=8, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.cls = nn.Conv2d(8, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cls(self.depthwise(self.expand(x)))


def depthwise_head(num_classes: int = 5) -> nn.Module:
    return DepthwiseHead(num_classes)


def test_every_primfunc_runs_on_the_gpu_within_limits(tmp_path_factory):
    art = user_adreno_artifact(tmp_path_factory)
    meta = json.loads((art / "meta.json").read_text())
    assert meta["device"] == "adreno660" and meta["target"]["kind"] == "opencl"
    assert meta["target"]["host"]["mtriple"] == "aarch64-linux-android"
    rules = {s["rule"] for s in meta["schedules"]}
    assert rules and all(r.startswith(("dlight.", "edgeprune.")) for r in rules)
    assert "dlight.gpu.Matmul" in rules  # the convs get the tiled matmul schedule, not one thread per output
    launch = json.loads((art / meta["opencl"]["launch"]).read_text())
    assert {f["name"] for f in launch["funcs"]} == {s["func"] for s in meta["schedules"]}
    assert meta["opencl"]["kernels"] == sum(len(f["kernels"]) for f in launch["funcs"])
    for func in launch["funcs"]:
        assert func["kernels"], f"{func['name']} has no GPU kernel"
        for kernel in func["kernels"]:
            assert math.prod(kernel["local_size"]) <= 256
            assert all(g % l == 0 for g, l in zip(kernel["global_size"], kernel["local_size"]))
            assert all(a["param"] is not None for a in kernel["args"])
    reference = (art / meta["opencl"]["reference"]).read_text()
    assert all(f"def {f['name']}(" in reference for f in launch["funcs"])


def test_small_reductions_get_edgeprunes_rule_within_a_user_targets_thread_limit(tmp_path):
    targets = tmp_path / "targets.toml"
    targets.write_text(SMALL_GPU)
    ckpt = make_checkpoint(tmp_path / "ckpt", "tests.compiler.test_build_adreno:depthwise_head", [1, 3, 6, 10])
    art = compiler.compile(ckpt, target="small-gpu", targets_file=targets, out=tmp_path / "art")
    meta = json.loads((art / "meta.json").read_text())
    assert meta["device"] == "small-gpu" and meta["target"]["max_threads_per_block"] == 64
    small = {s["func"] for s in meta["schedules"] if s["rule"] == "edgeprune.SmallReduction"}
    assert any("relu" in f for f in small)  # the depth-wise conv + BN + ReLU
    launch = json.loads((art / meta["opencl"]["launch"]).read_text())
    assert max(math.prod(k["local_size"]) for f in launch["funcs"] for k in f["kernels"]) <= 64
    report = check_artifact(art)
    assert report.ok, [r.to_json() for r in report.results if r.status != "ok"]

    # Why the rule exists: TVM's rules alone compute the one-element reduction wrong.
    dlight = [r for r in gpu_rules(make_target(resolve_target("adreno660"))) if r.name != "edgeprune.SmallReduction"]
    art = compiler.compile(ckpt, target="adreno660", rules=dlight, out=tmp_path / "dlight")
    wrong = [r for r in check_artifact(art).results if r.status != "ok"]
    assert [r.status for r in wrong] == ["mismatch"] and "relu" in wrong[0].func


def test_limits_and_host_fallback_are_errors_naming_the_function():
    import tvm

    from edgeprune.compiler.targets import get_target

    target = tvm.target.Target(get_target("adreno660").tvm)
    wide = KernelInfo("f_kernel", "f", block=[512, 1, 1])
    with pytest.raises(EdgepruneError, match="f: kernel f_kernel uses 512 threads per block, over the target's 256"):
        check_limits({"f": [wide]}, target)
    greedy = KernelInfo("g_kernel", "g", block=[64, 1, 1], shared_bytes=65536)
    with pytest.raises(EdgepruneError, match="g: kernel g_kernel uses 65536 bytes of local memory"):
        check_limits({"g": [greedy]}, target)
    with pytest.raises(EdgepruneError, match="h: fell back to the host CPU"):
        check_limits({"h": []}, target)


def test_tuning_configs_are_for_cpu_targets(tmp_path):
    with pytest.raises(EdgepruneError, match="'adreno660' is a GPU: tuning configs apply to the CPU schedules only"):
        compiler.compile(tmp_path / "ckpt", target="adreno660", tuning_configs={"w": {"tile": 4}}, out=tmp_path / "art")
