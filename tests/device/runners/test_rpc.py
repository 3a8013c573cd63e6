"""``--device rpc://...`` through a real TVM RPC tracker and server on 127.0.0.1.

Every fault a device farm has is made for real: a port with no tracker, a tracker that does
not answer, a key whose only device is busy, a server killed or frozen part-way through the
timed runs, and artifacts whose target the device cannot run. Each must end in one clear error
within a bounded time, keeping the runs already timed.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from edgeprune.base.errors import EdgepruneError
from edgeprune.device.runners import MeasurementFailed
from edgeprune.device.runners.localfarm import free_port, stop
from edgeprune.device.spec import DeviceSpec
from tests.compiler.checkpoints import sample_input
from tests.repo import REPO

KEYS = {"median_ms", "mean_ms", "std_ms", "min_ms", "max_ms", "p90_ms", "p95_ms", "fps", "runs", "device",
        "target", "artifact_sha256", "first_ms", "timings_ms", "time"}
SLACK_S = 5.0  # scheduling noise of a busy 2-core machine on top of a bound


def test_rpc_and_local_give_the_same_report_and_outputs(host_artifact, server, cli, tmp_path):
    reports = {}
    for device in ("local", server):
        out = tmp_path / f"{device.split(':')[0]}.json"
        result = cli("bench", str(host_artifact), "--device", device, "--runs", "5", "--warmup", "1",
                     "--threads", "1", "--no-history", "--json", str(out))
        assert result.returncode == 0, result.stderr
        assert "FPS" in result.stdout and device in result.stdout
        reports[device] = json.loads(out.read_text())
    local, remote = reports["local"], reports[server]
    assert set(local) == set(remote) and KEYS <= set(remote)
    assert remote["runs"] == local["runs"] == 5 and len(remote["timings_ms"]) == 5
    assert remote["fps"] == pytest.approx(1000 / remote["median_ms"])
    assert (remote["runner"], local["runner"]) == ("rpc", "local")
    assert remote["artifact_sha256"] == local["artifact_sha256"] and remote["target"] == local["target"]
    assert remote["threads"] == local["threads"] == 1 and remote["partial"] is False

    x = sample_input([1, 3, 45, 61], seed=3)
    np.testing.assert_array_equal(DeviceSpec.parse(server).runner().run(host_artifact, x), DeviceSpec.parse("local").runner().run(host_artifact, x))


def test_ab_through_the_tracker_times_both_builds_in_one_session(build_pair, server, cli, tmp_path):
    out = tmp_path / "ab.json"
    result = cli("bench", str(build_pair.slowed), "--against", str(build_pair.old), "--device", server, "--rounds", "10",
                 "--runs", "10", "--warmup", "1", "--threads", "1", "--fail-above", "1.05", "--no-history", "--json", str(out))
    assert result.returncode == 3, result.stdout + result.stderr
    assert "slower: " in result.stdout and "kernels: not compared" in result.stdout
    report = json.loads(out.read_text())
    assert report["new"]["device"] == report["old"]["device"] and server in report["new"]["device"]
    assert report["new"]["runner"] == "rpc" and report["comparison"]["rounds"] == 10 and "kernels" not in report


def test_unreachable_tracker(host_artifact):
    device = f"rpc://127.0.0.1:{free_port()}/test-key"  # nothing listens there
    started = time.monotonic()
    with pytest.raises(EdgepruneError, match=r"the RPC tracker at 127\.0\.0\.1:\d+ cannot be reached"):
        DeviceSpec.parse(device).runner(timeout_s=2).measure(host_artifact, runs=1)
    assert time.monotonic() - started < 2 + SLACK_S


def test_a_port_that_never_answers(host_artifact):
    with socket.socket() as silent:  # accepts connections, says nothing
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        device = f"rpc://127.0.0.1:{silent.getsockname()[1]}/test-key"
        started = time.monotonic()
        with pytest.raises(EdgepruneError, match="does not answer as a TVM RPC tracker"):
            DeviceSpec.parse(device).runner(timeout_s=1).measure(host_artifact, runs=1)
    assert time.monotonic() - started < 1 + SLACK_S


def test_key_without_servers(farm, host_artifact):
    started = time.monotonic()
    with pytest.raises(EdgepruneError, match="no free device within 1 s .no server is registered under key 'nobody'"):
        DeviceSpec.parse(str(farm.address("nobody"))).runner(timeout_s=1).measure(host_artifact, runs=1)
    assert time.monotonic() - started < 1 + SLACK_S


def test_busy_device_times_out_and_is_not_held_afterwards(host_artifact, server):
    runner = DeviceSpec.parse(server).runner(timeout_s=2)
    with runner.open(host_artifact):  # holds the key's only device
        started = time.monotonic()
        with pytest.raises(EdgepruneError, match=r"no free device within 2 s \(1 registered under the key, all busy\)"):
            runner.measure(host_artifact, runs=1)
        assert time.monotonic() - started < 2 + SLACK_S
    # the abandoned request was withdrawn: the freed device serves the next one
    assert DeviceSpec.parse(server).runner(timeout_s=30).measure(host_artifact, runs=2, warmup=0).stats.runs == 2


def test_device_dropping_mid_run_keeps_the_runs_timed(farm, servers, host_artifact):
    proc = servers["drop-key"]
    try:
        def kill_the_server(done: int, expected: int) -> None:
            if proc.poll() is None:
                stop(proc)

        started = time.monotonic()
        with pytest.raises(MeasurementFailed, match="timed runs kept") as info:
            DeviceSpec.parse(str(farm.address("drop-key"))).runner(timeout_s=10).measure(
                host_artifact, runs=10**6, warmup=1, on_chunk=kill_the_server)
        assert time.monotonic() - started < 10 + SLACK_S
    finally:
        stop(proc)
    partial = info.value.partial
    assert partial.partial and partial.error and "timing failed" in partial.error
    assert partial.stats.runs == len(partial.stats.timings_ms) >= 1
    assert partial.to_json()["partial"] is True


def test_frozen_device_times_out(farm, servers, host_artifact):
    proc = servers["frozen-key"]
    frozen_at = 0.0
    try:
        def freeze_the_server(done: int, expected: int) -> None:
            nonlocal frozen_at
            os.killpg(proc.pid, signal.SIGSTOP)
            frozen_at = time.monotonic()

        with pytest.raises(MeasurementFailed, match=r"timing: no answer within [\d.]+ s") as info:
            DeviceSpec.parse(str(farm.address("frozen-key"))).runner(timeout_s=2).measure(
                host_artifact, runs=10**6, warmup=1, on_chunk=freeze_the_server)
        waited = time.monotonic() - frozen_at
    finally:
        stop(proc)
    timings = info.value.partial.stats.timings_ms
    assert len(timings) >= 1
    # the bound: the timeout plus twice what the last chunk took (the time a chunk may take)
    assert waited < 2 + 2 * sum(timings) / 1e3 + SLACK_S


def _with_target(host_artifact, tmp_path, target: dict) -> str:
    art = tmp_path / "art"
    shutil.copytree(host_artifact, art)
    meta = json.loads((art / "meta.json").read_text())
    meta["target"] = target
    (art / "meta.json").write_text(json.dumps(meta))
    return art


def test_artifact_for_another_architecture_is_refused(host_artifact, server, tmp_path):
    art = _with_target(host_artifact, tmp_path, {"kind": "llvm", "mtriple": "aarch64-linux-android"})
    with pytest.raises(EdgepruneError, match=rf"built for aarch64-linux-android .*, but {server} is a {platform.machine()}"):
        DeviceSpec.parse(server).runner(timeout_s=30).measure(art, runs=1)


def test_opencl_artifact_on_a_device_without_opencl_is_refused(host_artifact, server, tmp_path):
    host = {"kind": "llvm", "mtriple": f"{platform.machine()}-linux-gnu"}
    art = _with_target(host_artifact, tmp_path, {"kind": "opencl", "device": "adreno", "host": host})
    with pytest.raises(EdgepruneError, match=f"built for OpenCL .*, but {server} has no OpenCL device"):
        DeviceSpec.parse(server).runner(timeout_s=30).measure(art, runs=1)


def test_bench_cli_keeps_the_runs_timed_when_interrupted(server, host_artifact, tmp_path):
    out = tmp_path / "partial.json"
    bench = subprocess.Popen(
        [sys.executable, "-m", "edgeprune", "bench", str(host_artifact), "--device", server,
         "--runs", "1000000", "--warmup", "1", "--no-history", "--json", str(out)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONWARNINGS="ignore"),
        # A shell that runs the tests in the background ignores SIGINT, and children inherit that:
        # the bench would never see the Ctrl-C below (it ran on until pytest's timeout).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    stderr: list[str] = []

    def read_stderr() -> None:  # Ctrl-C once the first progress line shows timed runs
        for line in bench.stderr:
            stderr.append(line)
            if line.startswith("bench rpc://"):
                bench.send_signal(signal.SIGINT)

    reader = threading.Thread(target=read_stderr)
    reader.start()
    try:
        bench.wait(timeout=120)  # its stdout (a table and a line) fits in the pipe meanwhile
        stdout = bench.stdout.read()
        reader.join(timeout=30)
    finally:
        bench.kill()
    assert bench.returncode == 130, "".join(stderr)
    assert stderr[-1] == "edgeprune: interrupted\n"
    assert "(partial)" in stdout and f"wrote {out} (partial" in stdout
    data = json.loads(out.read_text())
    assert data["partial"] is True and data["error"] == "interrupted" and data["runs"] == len(data["timings_ms"]) >= 1
