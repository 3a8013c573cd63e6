"""A device farm on this machine: TVM's own RPC tracker and servers on 127.0.0.1.

``python -m tvm.exec.rpc_tracker`` and ``python -m tvm.exec.rpc_server`` as subprocesses,
exactly what a farm runs, for trying ``--device rpc://`` without a phone, for the tests and for
benchmarks that compare the RPC runner with the local one. Each process gets a session of its
own, so ``stop`` ends it with everything it forked (the Python server serves each client from
a forked child process), and a test can kill or freeze a server to play a phone that drops.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from edgeprune.base.errors import EdgepruneError
from edgeprune.device.runners.tracker import TrackerAddress, registered_servers

START_TIMEOUT_S = 120.0  # each process imports TVM: seconds, more on a busy machine


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(proc: subprocess.Popen) -> None:
    """Kill the process and everything it forked (its session), and reap it."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def _spawn(module: str, args: list[str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", module, *args], stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    proc.log = log  # type: ignore[attr-defined]
    return proc


def _wait(ready: Callable[[], bool], what: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not ready():
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{proc.log.read_text()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not up after {START_TIMEOUT_S:g} s:\n{proc.log.read_text()}")
        time.sleep(0.2)


class LocalFarm:
    """A tracker on a free port of 127.0.0.1 (started on entering); ``servers`` adds servers.

    Process logs go to ``logs``; every process started is stopped on exit.
    """

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.port = free_port()
        self._procs: list[subprocess.Popen] = []

    def address(self, key: str) -> TrackerAddress:
        return TrackerAddress("127.0.0.1", self.port, key)

    def __enter__(self) -> LocalFarm:
        tracker = _spawn("tvm.exec.rpc_tracker", ["--host", "127.0.0.1", "--port", str(self.port),
                                                  "--port-end", str(self.port + 1)], self.logs / "tracker.log")
        self._procs.append(tracker)

        def answers() -> bool:
            try:
                registered_servers(self.address("any"), timeout_s=1.0)
                return True
            except EdgepruneError:
                return False

        try:
            _wait(answers, "rpc_tracker", tracker)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self._procs:
            stop(proc)

    def server(self, key: str) -> subprocess.Popen:
        """One new server under ``key``; its log file is ``proc.log``."""
        return self.servers(key)[key]

    def servers(self, *keys: str) -> dict[str, subprocess.Popen]:
        """One new server under each key, started side by side, back once all are registered."""
        before = {key: registered_servers(self.address(key)) for key in keys}
        procs = {}
        for key in keys:
            port = free_port()
            procs[key] = _spawn("tvm.exec.rpc_server", ["--tracker", f"127.0.0.1:{self.port}", "--key", key,
                                                        "--host", "127.0.0.1", "--port", str(port),
                                                        "--port-end", str(port + 1)],
                                self.logs / f"server-{key}-{port}.log")
            self._procs.append(procs[key])
        for key, proc in procs.items():
            _wait(lambda: registered_servers(self.address(key)) > before[key], f"rpc_server {key}", proc)
        return procs
