"""The artifact directory: its files and meta.json, running it, validating inputs, timing."""

from __future__ import annotations

import json
import platform
import subprocess

import numpy as np
import pytest
import tvm

from edgeprune import compiler
from edgeprune.base.errors import EdgepruneError
from edgeprune.compiler.artifact import FORMAT, LIB_FILE, META_FILE, load_artifact
from tests.compiler.checkpoints import reference, sample_input
from tests.repo import REPO


def test_artifact_files_and_meta(user_artifact, user_checkpoint):
    assert sorted(p.name for p in user_artifact.iterdir()) == sorted([LIB_FILE, META_FILE])
    meta = json.loads((user_artifact / META_FILE).read_text())
    assert meta["format"] == FORMAT and meta["format_version"] == 1
    assert meta["device"] == "host" and meta["target"]["kind"] == "llvm" and meta["target"]["mcpu"]
    assert meta["inputs"] == [{"name": "input", "shape": [1, 3, 45, 61], "dtype": "float32", "layout": "NCHW"}]
    assert meta["outputs"] == [{"name": "logits", "shape": [1, 5, 12, 16], "dtype": "float32", "layout": "NCHW"}]
    assert meta["source_kind"] == "checkpoint" and len(meta["source_sha256"]) == 64
    assert meta["tvm_version"] == tvm.__version__ and meta["edgeprune_version"]
    assert meta["tuned"] is False
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    assert meta.get("git_commit", "").split("-")[0] == head  # the checkout that compiled it (none: not one)
    rules = {s["rule"] for s in meta["schedules"]}
    # the user model's odd maps (45x61 input) end rows in ragged vectors: its inverted residuals'
    # expand and depthwise convs run as two kernels
    assert {"conv1x1", "depthwise_conv2d", "conv2d", "matmul", "softmax", "pool2d", "resize2d_separable"} <= rules
    assert not [s for s in meta["schedules"] if "fallback" in s]
    assert all(s["workload"] and isinstance(s["config"], dict) for s in meta["schedules"])


def test_run_matches_pytorch(user_artifact, user_checkpoint):
    art = load_artifact(user_artifact)
    x = sample_input(art.inputs[0].shape, seed=3)
    np.testing.assert_allclose(art(x), reference(user_checkpoint, x), atol=1e-4)


def test_wrong_input_shape_or_dtype_is_one_line_error(user_artifact):
    art = load_artifact(user_artifact)
    for bad in (np.zeros((1, 3, 45, 60), np.float32), np.zeros((1, 3, 45, 61), np.float64)):
        with pytest.raises(EdgepruneError) as exc:
            art(bad)
        message = str(exc.value)
        assert "\n" not in message and str(user_artifact) in message and "[1, 3, 45, 61]" in message
    with pytest.raises(EdgepruneError, match="expects 1 input"):
        art()


def test_time_returns_milliseconds_per_repeat(user_artifact):
    times = load_artifact(user_artifact, num_threads=1).time(number=2, repeat=3)
    assert len(times) == 3 and all(0 < t < 1000 for t in times)


def test_tuning_configs_are_used_and_recorded(user_checkpoint, user_artifact, tmp_path):
    meta = json.loads((user_artifact / META_FILE).read_text())
    conv = next(s for s in meta["schedules"] if s["rule"] == "conv1x1")
    tuned = {conv["workload"]: {**conv["config"], "tile_co": 1, "order": "channel"}}
    out = compiler.compile(user_checkpoint, tuning_configs=tuned, out=tmp_path / "tuned")
    tuned_meta = json.loads((out / META_FILE).read_text())
    assert tuned_meta["tuned"] is True
    used = [s for s in tuned_meta["schedules"] if s["workload"] == conv["workload"]]
    assert used and all(s["tuned"] and s["config"]["tile_co"] == 1 for s in used)
    x = sample_input(tuned_meta["inputs"][0]["shape"])
    np.testing.assert_allclose(load_artifact(out)(x), load_artifact(user_artifact)(x), atol=1e-5)


def test_bad_tuning_config_is_user_error(user_checkpoint, user_artifact, tmp_path):
    meta = json.loads((user_artifact / META_FILE).read_text())
    key = next(s["workload"] for s in meta["schedules"] if s["rule"] == "conv1x1")
    with pytest.raises(EdgepruneError, match="tile_co"):
        compiler.compile(user_checkpoint, tuning_configs={key: {"tile_co": 1000}}, out=tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_overwrite_replaces_artifact_but_not_foreign_directory(tmp_path):
    from edgeprune.compiler.artifact import write_artifact_dir

    out = tmp_path / "art"
    write_artifact_dir(out, lambda d: (d / META_FILE).write_text("{}"))
    write_artifact_dir(out, lambda d: (d / META_FILE).write_text('{"v": 2}'))
    assert (out / META_FILE).read_text() == '{"v": 2}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art"]  # no staging left behind
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"x")
    with pytest.raises(EdgepruneError, match="not an edgeprune artifact"):
        write_artifact_dir(foreign, lambda d: None)
    assert (foreign / "cat.jpg").exists()


def test_failed_build_leaves_previous_artifact(tmp_path):
    from edgeprune.compiler.artifact import write_artifact_dir

    out = tmp_path / "art"
    write_artifact_dir(out, lambda d: (d / META_FILE).write_text("old"))

    def broken(d):
        (d / META_FILE).write_text("half")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_artifact_dir(out, broken)
    assert (out / META_FILE).read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art"]


def test_loading_bad_artifacts(tmp_path, user_artifact):
    with pytest.raises(EdgepruneError, match="no such artifact"):
        load_artifact(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EdgepruneError, match="meta.json"):
        load_artifact(empty)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / META_FILE).write_text((user_artifact / META_FILE).read_text())
    (broken / LIB_FILE).write_bytes(b"\x7fELF truncated")
    with pytest.raises(EdgepruneError, match="cannot be loaded"):
        load_artifact(broken)


def test_outputs_survive_later_calls(user_artifact, tmp_path):
    """Outputs come back without a copy and inputs go through reused tensors: neither may let
    one call's result change under the caller, not even a model that returns its input."""
    import onnx
    from onnx import TensorProto, helper

    art = load_artifact(user_artifact)
    first = art(sample_input(art.inputs[0].shape, seed=1))
    kept = first.copy()
    art(sample_input(art.inputs[0].shape, seed=2))
    np.testing.assert_array_equal(first, kept)

    shape = [1, 3, 4, 5]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["input"], ["out"])], "identity",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, shape)],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "identity.onnx")
    identity = load_artifact(compiler.compile(tmp_path / "identity.onnx", out=tmp_path / "identity"))
    ones = identity(np.ones(shape, np.float32))
    identity(np.full(shape, 2.0, np.float32))
    np.testing.assert_array_equal(ones, np.ones(shape, np.float32))


def test_a_library_for_another_architecture_says_so(tmp_path, user_artifact):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / META_FILE).write_text((user_artifact / META_FILE).read_text())
    machine = 0xB7 if platform.machine() != "aarch64" else 0x3E  # aarch64, or x86_64 on an arm64 host
    (foreign / LIB_FILE).write_bytes(b"\x7fELF\x02\x01\x01" + bytes(11) + machine.to_bytes(2, "little") + bytes(44))
    with pytest.raises(EdgepruneError, match="library, this machine is"):
        load_artifact(foreign)
