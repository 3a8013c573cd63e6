"""The physical slice computes exactly what the masked model computes; policies round-trip."""

from __future__ import annotations

import json
import warnings

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from edgeprune.base.errors import EdgepruneError
from edgeprune.pruning.coupling import analyze, default_prunable
from edgeprune.pruning.models import build_model
from edgeprune.pruning.slicing import apply_policy, policy_to_json, slice_model
from tests.pruning import nets

X = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
X64 = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny inputs run faster on one thread, and stay fast when other jobs share the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


CASES = {
    "chain": nets.Chain,
    "depthwise": nets.DepthwiseSeparable,
    "inverted_residual": nets.Inverted,
    "concat": nets.Concat,
    "split": nets.Split,
    "grouped2": lambda: nets.Grouped(2),
    "grouped4": lambda: nets.Grouped(4),
    "ghost": nets.Ghost,
    "injection": nets.Injection,
    "nonzero_paths": nets.NonzeroPaths,
    "user": nets.UserNet,
    "tokens": nets.Tokens,
    "unsliceable": nets.Unsliceable,
    "untraceable": nets.Untraceable,
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("fraction", [0.5, 0.0])
def test_slice_equals_masked_model(case, fraction):
    model = nets.randomize(CASES[case]())
    graph = analyze(model, X)
    keep = nets.random_keep(graph, seed=3, fraction=fraction)  # 0.0: one channel per group
    assert keep, "every case has a prunable group"
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert nets.slice_error(model, graph, keep, X) <= nets.TOLERANCE
    sliced = slice_model(model, graph, keep)
    assert params(sliced) < params(model)
    assert nets.site_macs(graph, keep) == nets.conv_linear_macs(sliced, X[:1])
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()), "the original is untouched"


def test_sliced_modules_have_the_kept_widths():
    model = nets.randomize(nets.DepthwiseSeparable())
    graph = analyze(model, X)
    sliced = slice_model(model, graph, {0: torch.tensor([1, 4, 6]), 1: torch.tensor([0, 15])})
    assert (sliced.stem[0].out_channels, sliced.stem[1].num_features) == (3, 3)
    assert (sliced.dw[0].in_channels, sliced.dw[0].out_channels, sliced.dw[0].groups) == (3, 3, 3)
    assert (sliced.pw[0].in_channels, sliced.pw[0].out_channels, sliced.head.in_channels) == (3, 2, 2)
    torch.testing.assert_close(sliced.dw[1].running_var, model.dw[1].running_var[[1, 4, 6]])
    torch.testing.assert_close(sliced.pw[0].weight, model.pw[0].weight[[0, 15]][:, [1, 4, 6]])


def test_slicing_refuses_bad_keep_sets():
    model = nets.Grouped(2)
    graph = analyze(model, X)
    with pytest.raises(EdgepruneError, match=r"channel group 2 \(produced by conv3.0\) would keep 0 of 8 channels"):
        slice_model(model, graph, {2: torch.tensor([], dtype=torch.long)})
    with pytest.raises(EdgepruneError, match=r"group 0 \(produced by conv1.0\) cannot be pruned: read by grouped"):
        slice_model(model, graph, {0: torch.arange(8)})
    with pytest.raises(EdgepruneError, match="must lie in 0..7"):
        slice_model(model, graph, {2: torch.tensor([0, 8])})
    with pytest.raises(EdgepruneError, match="repeat"):
        slice_model(model, graph, {2: torch.tensor([1, 1])})
    with pytest.raises(EdgepruneError, match="no channel group 9"):
        slice_model(model, graph, {9: torch.tensor([0])})
    assert params(slice_model(model, graph, {0: torch.arange(16)})) == params(model)  # whole: fine


# --------------------------------------------------------------------------- built-in models


@pytest.fixture(scope="module")
def topformer_tiny():
    model = nets.randomize(build_model("topformer-tiny"))
    return model, analyze(model, X64, default_prunable("topformer-tiny"))


def test_topformer_tiny_slice_is_exact_and_exports(topformer_tiny, tmp_path):
    model, graph = topformer_tiny
    keep = nets.random_keep(graph, seed=5, fraction=0.4)
    assert len(keep) == 9
    assert nets.slice_error(model, graph, keep, X64) <= nets.TOLERANCE
    sliced = slice_model(model, graph, keep).eval()
    assert nets.site_macs(graph, keep) == nets.conv_linear_macs(sliced, X64)
    path = tmp_path / "sliced.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(sliced, (X64,), str(path), opset_version=17, input_names=["input"], dynamo=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": X64.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(got, sliced(X64).numpy(), rtol=0, atol=1e-4)


def test_topformer_tiny_every_prunable_group_slices_exactly(topformer_tiny):
    """Includes the semantic injection (h_sigmoid gate) and the MLPs' biased depth-wise convs."""
    model, _ = topformer_tiny
    graph = analyze(model, X64)
    keep = nets.random_keep(graph, seed=6, fraction=0.5)
    assert len(keep) == 14
    assert nets.slice_error(model, graph, keep, X64) <= nets.TOLERANCE


def test_deeplabv3plus_backbone_slice_is_exact():
    model = nets.randomize(build_model("deeplabv3plus-mbv2"))
    graph = analyze(model, X64, default_prunable("deeplabv3plus-mbv2"))
    keep = nets.random_keep(graph, seed=7, fraction=0.3)
    assert len(keep) == 24
    assert nets.slice_error(model, graph, keep, X64) <= nets.TOLERANCE
    assert nets.site_macs(graph, keep) == nets.conv_linear_macs(slice_model(model, graph, keep), X64)


# --------------------------------------------------------------------------- policies


def test_policy_round_trip_on_a_fresh_model(topformer_tiny):
    model, graph = topformer_tiny
    keep = nets.random_keep(graph, seed=8, fraction=0.5)
    sliced = slice_model(model, graph, keep).eval()
    policy = json.loads(json.dumps(policy_to_json(graph, keep)))
    assert policy["version"] == 1 and policy["input_shape"] == [1, 3, 64, 64]
    assert policy["groups"][0] == {
        "producers": ["tpm.stem.0", "tpm.layers.0.conv.1.0"],
        "size": 16,
        "kept": keep[0].tolist(),
    }
    rebuilt = apply_policy(build_model("topformer-tiny"), policy)
    rebuilt.load_state_dict(sliced.state_dict())
    rebuilt.eval()
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(X64), sliced(X64), rtol=0, atol=0)


def test_policy_that_does_not_fit_the_model_is_a_user_error():
    model = nets.Chain()
    graph = analyze(model, X)
    policy = policy_to_json(graph, {0: torch.tensor([0, 2])})
    wrong_producer = json.loads(json.dumps(policy))
    wrong_producer["groups"][0]["producers"] = ["conv9"]
    with pytest.raises(EdgepruneError, match="pruning policy: the model has no channel group produced by conv9"):
        apply_policy(nets.Chain(), wrong_producer)
    wrong_size = json.loads(json.dumps(policy))
    wrong_size["groups"][0]["size"] = 9
    with pytest.raises(EdgepruneError, match="has 8 channels, the policy says 9"):
        apply_policy(nets.Chain(), wrong_size)
    with pytest.raises(EdgepruneError, match="expected version 1, found 2"):
        apply_policy(nets.Chain(), {**policy, "version": 2})
    with pytest.raises(EdgepruneError, match="malformed"):
        apply_policy(nets.Chain(), {"version": 1, "groups": []})
