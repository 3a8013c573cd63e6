"""The compiler's per-layer sparse-or-dense choice, end to end from an ONNX file."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import tvm
from torch import nn
from tvm import relax

from edgeprune.cli import main
from edgeprune.compiler.artifact import load_artifact
from edgeprune.compiler.build import build, fuse
from edgeprune.compiler.frontend import import_model
from edgeprune.compiler.passes.structure import kernel_calls
from edgeprune.compiler.sparse.select import SparseOption, sparsify
from edgeprune.compiler.sparse.synthetic import column_sparse
from edgeprune.compiler.target import make_target
from edgeprune.compiler.targets import resolve_target
from edgeprune.pruning.onnx_export import export_onnx

SHAPE = (1, 6, 13, 15)


class Net(nn.Module):
    """Sparse 3x3 (BN, ReLU) and 1x1 (bias, residual add) convs, and a dense 1x1 head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(6, 20, 3, padding=1, bias=False), nn.BatchNorm2d(20), nn.ReLU())
        self.point = nn.Conv2d(20, 20, 1)
        self.head = nn.Conv2d(20, 5, 1)

    def forward(self, x):
        y = self.conv(x)
        return self.head(self.point(y) + y)


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    torch.manual_seed(0)
    model = Net().eval()
    with torch.no_grad():
        model.conv[1].running_mean.uniform_(-0.5, 0.5)
        model.conv[1].running_var.uniform_(0.5, 1.5)
        model.conv[0].weight.copy_(torch.from_numpy(column_sparse((20, 6, 3, 3), 0.75, 4, seed=1)))
        model.point.weight.copy_(torch.from_numpy(column_sparse((20, 20, 1, 1), 0.8, 3, seed=2)))
    path = tmp_path_factory.mktemp("sparse") / "net.onnx"
    export_onnx(model, SHAPE, path)
    x = np.random.default_rng(0).standard_normal(SHAPE).astype(np.float32)
    with torch.no_grad():
        expected = model.double()(torch.from_numpy(x).double()).numpy()
    return path, x, expected


def test_forced_sparse_build_rewrites_both_sparse_convs_and_computes_the_same(onnx_file):
    path, x, expected = onnx_file
    target = make_target(resolve_target("host"))
    option = SparseOption(0.5, force=True)
    executable, records = build(import_model(path), target, None, option)
    assert len(option.choices) == 2  # the dense head is no candidate
    assert all(c.chosen == "sparse" and c.sparse_ms > 0 and c.dense_ms > 0 for c in option.choices)
    assert all(c.sparse_bytes < c.dense_bytes for c in option.choices)
    rules = [r.rule for r in records]
    assert rules.count("sparse_conv") == 2 and rules.count("conv1x1") + rules.count("conv2d") == 1  # dense ones gone
    vm = relax.VirtualMachine(executable, tvm.cpu())
    out = vm["main"](tvm.runtime.tensor(x)).numpy()
    assert np.abs(out - expected).max() < 1e-4


def test_compile_keeps_the_measured_faster_kernel_and_records_it_in_meta(onnx_file, tmp_path, capsys):
    path, x, expected = onnx_file
    art = tmp_path / "art"
    assert main(["compile", str(path), "--sparse", "auto", "--out", str(art)]) == 0
    assert "of 2 sparse-enough convs run sparse" in capsys.readouterr().out
    meta = json.loads((art / "meta.json").read_text())
    choices = meta["sparse"]
    assert len(choices) == 2
    for choice in choices:
        assert choice["zero_fraction"] >= 0.5
        assert choice["chosen"] == ("sparse" if choice["sparse_ms"] < choice["dense_ms"] else "dense")
    rules = [s["rule"] for s in meta["schedules"]]
    assert rules.count("sparse_conv") == sum(c["chosen"] == "sparse" for c in choices)
    assert np.abs(load_artifact(art)(x) - expected).max() < 1e-4


def test_no_candidate_below_the_threshold(onnx_file):
    path, _, _ = onnx_file
    target = make_target(resolve_target("host"))
    mod = fuse(import_model(path), target)
    same, choices = sparsify(mod, target, min_zero=0.95)
    assert choices == [] and kernel_calls(same) == kernel_calls(mod)


@pytest.mark.parametrize("value", ["0", "1.5", "lots"])
def test_bad_sparse_fractions_are_refused_by_the_cli(onnx_file, tmp_path, value, capsys):
    with pytest.raises(SystemExit) as info:
        main(["compile", str(onnx_file[0]), "--sparse", value, "--out", str(tmp_path / "art")])
    assert info.value.code == 2 and "--sparse" in capsys.readouterr().err
    assert not (tmp_path / "art").exists()


def test_tuner_sees_the_sparse_kernels_and_compile_uses_their_tuned_config(onnx_file, tmp_path, capsys):
    from edgeprune.compiler.tuner.tasks import model_tasks

    onnx_file, x, expected = onnx_file
    target = resolve_target("host")
    assert not [t for t in model_tasks(onnx_file, target) if t.rule.name == "sparse_conv"]
    sparse_tasks = [t for t in model_tasks(onnx_file, target, sparse=0.5) if t.rule.name == "sparse_conv"]
    assert len(sparse_tasks) == 2
    log = tmp_path / "tune.jsonl"
    assert main(["tune", str(onnx_file), "--trials", "6", "--workloads", "sparse_conv", "--sparse", "auto",
                 "--confirm-top", "0", "--repeat", "2", "--min-repeat-ms", "1", "--log", str(log)]) == 0
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert {r["workload"] for r in records} == {t.key for t in sparse_tasks}
    from edgeprune.compiler.tuner.log import tuning_configs

    option = SparseOption(0.5, force=True)
    executable, records = build(import_model(onnx_file), make_target(target), tuning_configs(log, target), option)
    tuned = sorted(r.workload for r in records if r.rule == "sparse_conv" and r.tuned)
    assert tuned == sorted(t.key for t in sparse_tasks)
    vm = relax.VirtualMachine(executable, tvm.cpu())
    assert np.abs(vm["main"](tvm.runtime.tensor(x)).numpy() - expected).max() < 1e-4
