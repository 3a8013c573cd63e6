"""The target registry: built-ins, user targets files (TOML/JSON, env var), their errors, the verb."""

from __future__ import annotations

import json
import platform

import pytest
import tvm

from edgeprune.base.errors import EdgepruneError
from edgeprune.compiler.targets import ENV_VAR, device_type, get_target, load_targets, resolve_target, triple

S23 = """
format_version = 1

[targets.s23-gpu]
extends = "adreno740"
notes = "Galaxy S23"
tvm = { max_threads_per_block = 512 }

[targets.pixel-cpu]
extends = "android-arm64-cpu"
tvm = { mcpu = "cortex-a78", num-cores = 2 }
"""


def test_builtins_have_tvm_targets_limits_and_device_kinds():
    targets = load_targets([])
    assert {"host", "adreno660", "adreno740", "android-arm64-cpu"} <= set(targets)
    host = targets["host"]
    assert host.device_type == "cpu" and host.triple.startswith(platform.machine())
    for name in ("adreno660", "adreno740"):
        gpu = targets[name]
        assert gpu.is_gpu and gpu.device_type == "opencl" and gpu.triple == "aarch64-linux-android"
        assert gpu.limits == {"max_threads_per_block": 256, "max_shared_memory_per_block": 16384,
                              "texture_spatial_limit": 16384, "texture_depth_limit": 2048}
        built = tvm.target.Target(dict(gpu.tvm))
        assert "adreno" in built.keys and built.host.attrs["mtriple"] == "aarch64-linux-android"
        assert int(built.attrs["max_threads_per_block"]) == 256
    arm = targets["android-arm64-cpu"]
    assert arm.device_type == "cpu" and "+neon" in arm.tvm["mattr"]
    listed = json.loads(json.dumps(targets["adreno660"].to_json()))  # what `edgeprune targets --json` prints
    assert listed["device_type"] == "opencl" and listed["limits"]["max_threads_per_block"] == 256


def test_device_kind_and_triple_come_from_a_meta_target_dict():
    """What a runner reads from an artifact's meta.json to refuse a device of another kind."""
    gpu = {"kind": "opencl", "host": {"kind": "llvm", "mtriple": "aarch64-linux-android"}}
    cpu = {"kind": "llvm", "mtriple": "x86_64-linux-gnu"}
    assert (device_type(gpu), triple(gpu)) == ("opencl", "aarch64-linux-android")
    assert (device_type(cpu), triple(cpu)) == ("cpu", "x86_64-linux-gnu")


def test_toml_targets_extend_builtins_and_override_limits(tmp_path):
    path = tmp_path / "phones.toml"
    path.write_text(S23)
    s23 = get_target("s23-gpu", path)
    assert s23.limits["max_threads_per_block"] == 512 and s23.limits["max_shared_memory_per_block"] == 16384
    assert s23.tvm["host"]["mtriple"] == "aarch64-linux-android" and s23.notes == "Galaxy S23"
    assert s23.source == str(path)
    pixel = get_target("pixel-cpu", path)
    assert pixel.tvm["mcpu"] == "cortex-a78" and pixel.tvm["num-cores"] == 2 and pixel.device_type == "cpu"
    assert int(tvm.target.Target(resolve_target("s23-gpu", path)).attrs["max_threads_per_block"]) == 512


def test_json_targets_and_the_environment_variable(tmp_path, monkeypatch):
    path = tmp_path / "lab.json"
    path.write_text(json.dumps({"targets": {"lab-box": {"tvm": {"kind": "llvm", "mtriple": "aarch64-linux-gnu"},
                                                         "notes": "a Jetson"}}}))
    monkeypatch.setenv(ENV_VAR, str(path))
    assert get_target("lab-box").triple == "aarch64-linux-gnu"
    assert "lab-box" in load_targets()
    monkeypatch.delenv(ENV_VAR)
    with pytest.raises(EdgepruneError, match="unknown target 'lab-box'"):
        get_target("lab-box")


@pytest.mark.parametrize(("text", "message"), [
    ("[targets.a", "not valid TOML"),
    ("[targets.x]\nextends = 'adreno660'\ncolour = 'red'\n", "target 'x': unknown key"),
    ("[targets.adreno660]\nnotes = 'mine'\n", "redefines a built-in target"),
    ("[targets.x]\nextends = 'adreno999'\n", "extends unknown target 'adreno999'"),
    ("[targets.x]\nextends = 'adreno660'\ntvm = { max_threads_per_block = 'many' }\n",
     "max_threads_per_block must be a positive integer"),
    ("[targets.x]\nextends = 'adreno660'\ntvm = { bogus_attr = 1 }\n",
     "TVM rejects the target: Unknown config option 'bogus_attr'"),
    ("[targets.x]\nnotes = 'no kind'\n", "no TVM target kind"),
    ("[targets.x]\ntvm = { kind = 'cuda' }\n", "kind 'cuda' is not supported"),
    ("[targets.X]\nextends = 'host'\n", "names are lower-case"),
    ("format_version = 2\n[targets.x]\nextends = 'host'\n", "format_version 2 is not supported"),
    ("title = 'phones'\n", "unknown top-level key"),
])
def test_bad_targets_files_name_the_file_and_the_problem(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(EdgepruneError, match=message) as info:
        load_targets([path])
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def test_missing_and_malformed_json_targets_files(tmp_path):
    with pytest.raises(EdgepruneError, match="cannot read targets file"):
        load_targets([tmp_path / "nope.toml"])
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(EdgepruneError, match=r"bad.json: not valid JSON"):
        load_targets([bad])
    bad.write_text('{"targets": []}')
    with pytest.raises(EdgepruneError, match=r"bad.json: no 'targets' table"):
        load_targets([bad])


def test_targets_verb_lists_builtins_and_user_targets(cli, tmp_path):
    path = tmp_path / "phones.toml"
    path.write_text(S23)
    result = cli("targets", "--targets-file", str(path))
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert {"host", "adreno660", "adreno740", "android-arm64-cpu", "s23-gpu", "pixel-cpu"} <= set(lines)
    assert " 512 " in lines["s23-gpu"] and "16 KiB" in lines["adreno660"] and str(path) in lines["s23-gpu"]


def test_compile_rejects_an_unknown_target(tmp_path):
    from edgeprune import compiler

    with pytest.raises(EdgepruneError, match="unknown target 'pixel9'.*adreno660"):
        compiler.compile(tmp_path / "missing", target="pixel9", out=tmp_path / "art")
