"""The OpenCL kernel check: every kernel of an Adreno artifact on PoCL against the CPU, and that
it catches broken launches and broken sources."""

from __future__ import annotations

import json

import pytest

from edgeprune.base.errors import EdgepruneError
from edgeprune.device.opencl_check import check_artifact, split_source
from tests.device.adreno_artifact import copy_of, user_adreno_artifact


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    return user_adreno_artifact(tmp_path_factory)


def launch_of(art):
    return json.loads((art / "kernels" / "launch.json").read_text())


def test_split_source_gives_one_program_per_kernel():
    source = "// Function: a_kernel\n__kernel void a_kernel() {}\n\n// Function: b_kernel\n__kernel void b_kernel() {}\n"
    assert split_source(source) == {"a_kernel": "__kernel void a_kernel() {}\n\n", "b_kernel": "__kernel void b_kernel() {}\n"}


def test_every_kernel_of_the_artifact_passes_on_pocl(artifact):
    report = check_artifact(artifact)
    expected = [k["name"] for f in launch_of(artifact)["funcs"] for k in f["kernels"]]
    assert [r.kernel for r in report.results] == expected
    assert report.ok, [r.to_json() for r in report.results if r.status != "ok"]
    assert all(r.pocl_ms is not None and r.pocl_ms >= 0 for r in report.results)
    assert all(r.max_error is not None and r.max_error < 1e-3 for r in report.results)
    assert "Portable Computing Language" in report.device and "not the phone" in report.to_json()["timings_are"]


def test_a_launch_that_misses_outputs_is_a_mismatch(artifact, tmp_path):
    art = copy_of(artifact, tmp_path / "art")
    launch = launch_of(art)
    func = next(f for f in launch["funcs"] if f["name"].startswith("fused_conv2d") and len(f["kernels"]) == 1)
    kernel = func["kernels"][0]
    groups = [g // l for g, l in zip(kernel["global_size"], kernel["local_size"])]
    axis = groups.index(max(groups))
    assert groups[axis] > 1
    kernel["global_size"][axis] = groups[axis] // 2 * kernel["local_size"][axis]  # half the work groups
    (art / "kernels" / "launch.json").write_text(json.dumps(launch))
    (result,) = check_artifact(art, funcs=[func["name"]]).results
    assert result.status == "mismatch" and result.max_error > 1e-2


def test_a_kernel_that_does_not_compile_is_reported(artifact, tmp_path):
    art = copy_of(artifact, tmp_path / "art")
    func = launch_of(art)["funcs"][0]
    name = func["kernels"][0]["name"]
    source = (art / "kernels" / "opencl.cl").read_text()
    broken = source.replace(f"__kernel void {name}(", f"__kernel void {name}(undeclared_type x, ")
    (art / "kernels" / "opencl.cl").write_text(broken)
    report = check_artifact(art, funcs=[func["name"]])
    assert report.results[0].status == "build_failed" and not report.ok


def test_check_verb_reports_and_bad_artifacts_are_one_line_errors(cli, artifact, tmp_path):
    result = cli("check", str(artifact), "--func", launch_of(artifact)["funcs"][0]["name"], "--json", str(tmp_path / "r.json"))
    assert result.returncode == 0, result.stderr
    assert "1 ok" in result.stdout and "not the phone's GPU" in result.stdout
    assert json.loads((tmp_path / "r.json").read_text())["ok"] is True
    art = copy_of(artifact, tmp_path / "art")
    meta = json.loads((art / "meta.json").read_text())
    del meta["opencl"]
    (art / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(EdgepruneError, match="has no OpenCL kernels .* compile for a GPU target"):
        check_artifact(art)
    art = copy_of(artifact, tmp_path / "art2")
    (art / "kernels" / "launch.json").unlink()
    with pytest.raises(EdgepruneError, match="launch.json: missing"):
        check_artifact(art)
    with pytest.raises(EdgepruneError, match="no function"):
        check_artifact(artifact, funcs=["not_a_function"])
