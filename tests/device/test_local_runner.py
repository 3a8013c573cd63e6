"""``edgeprune bench --device local`` on a real compiled artifact."""

import json

import pytest

import compiler
from device.runners import runner_for
from edgeprune.errors import EdgepruneError
from tests.compiler.conftest import USER_MODEL, USER_SHAPE, make_checkpoint

KEYS = {"median_ms", "mean_ms", "std_ms", "min_ms", "max_ms", "p90_ms", "p95_ms", "fps", "runs", "device",
        "target", "artifact_sha256"}


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    ckpt = make_checkpoint(root / "ckpt", USER_MODEL, USER_SHAPE)
    return compiler.compile(ckpt, out=root / "art")


def test_local_runner_measures(artifact):
    result = runner_for("local").measure(artifact, runs=7, warmup=1, threads=1)
    s = result.stats
    assert s.runs == 7 and len(s.timings_ms) == 7
    assert 0 < s.min_ms <= s.median_ms <= s.p90_ms <= s.p95_ms <= s.max_ms
    assert result.threads == 1 and len(result.artifact_sha256) == 64
    assert result.target["kind"] == "llvm"


def test_bench_cli_writes_the_statistics(artifact, cli, tmp_path):
    out = tmp_path / "bench.json"
    result = cli("bench", str(artifact), "--runs", "5", "--warmup", "1", "--json", str(out))
    assert result.returncode == 0, result.stderr
    assert "FPS" in result.stdout
    data = json.loads(out.read_text())
    assert KEYS <= set(data) and data["runs"] == 5 and data["fps"] == pytest.approx(1000 / data["median_ms"])


def test_unknown_device():
    with pytest.raises(EdgepruneError, match="unknown device"):
        runner_for("rpc://nowhere:9190/s21")
