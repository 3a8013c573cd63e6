"""``--device rpc://HOST:PORT/KEY``: a device of the farm behind a TVM RPC tracker.

For an artifact (``bench``), the runner asks the tracker for a free device under KEY (a phone
running TVM's ``tvm_rpc`` server, or any ``python -m tvm.exec.rpc_server``), checks that the
artifact can run there, uploads ``model.so``, loads it into a Relax VM on the device's CPU or
OpenCL device, and times ``main`` there with TVM's ``time_evaluator``: only timings travel back.

Every wait is bounded by ``timeout_s``: the tracker, a free device, and each call on the
device (beyond the time the call is expected to take), so a device that drops or stops
answering becomes a one-line error, never a hang.

For the tuner's kernel libraries (``time_kernels``), every library asks the tracker for a
session of its own, so with several devices under one key the tracker spreads them over all.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from edgeprune.base.errors import EdgepruneError, last_line
from edgeprune.base.workers import JobFailure
from edgeprune.compiler.artifact import LIB_FILE, Artifact, read_meta
from edgeprune.compiler.targets import device_type, triple
from edgeprune.device.runners.base import Runner
from edgeprune.device.runners.deadline import call_with_deadline, sever
from edgeprune.device.runners.kernels import KernelLibrary, TimingPlan, time_loaded
from edgeprune.device.runners.tracker import Granted, TrackerAddress, registered_servers, request_session

T = TypeVar("T")
_BIG_CORES = 1  # TVM thread-pool affinity mode: the fastest cores (what phones want)
_ARCH_ALIASES = {"arm64": "aarch64", "amd64": "x86_64"}


@dataclass
class Remote:
    """An RPC session whose calls are bounded and whose failures are one-line errors.

    A call past its deadline severs the connection to the device's server, so the session is
    dead afterwards: every later call fails at once rather than waiting behind the stuck one.
    """

    granted: Granted
    address: TrackerAddress
    timeout_s: float

    @property
    def session(self) -> Any:
        return self.granted.session

    def call(self, fn: Callable[[], T], what: str, expected_s: float = 0.0) -> T:
        """``fn()`` on the device; it may take ``expected_s`` plus ``timeout_s`` before we give up."""
        try:
            return call_with_deadline(fn, self.timeout_s + expected_s, f"{self.address}: {what}",
                                      cancel=lambda: sever(self.granted.host, self.granted.port))
        except EdgepruneError:
            raise
        except Exception as exc:  # noqa: BLE001 - TVM's RPC raises RuntimeError subclasses of many kinds
            raise EdgepruneError(f"{self.address}: {what} failed ({last_line(exc)})") from exc

    def triple(self) -> str | None:
        """The server's LLVM triple, if it has LLVM (a full TVM install; not a phone's ``tvm_rpc``)."""
        try:
            fn = self.call(lambda: self.session.get_function("target.llvm_get_system_triple"), "asking its CPU")
        except EdgepruneError as exc:
            if "has no function" in str(exc):
                return None
            raise
        return str(self.call(fn, "asking its CPU"))


def _platform(triple: str) -> tuple[str, bool]:
    """(architecture, is Android) of an LLVM triple."""
    arch = triple.split("-")[0].lower()
    return _ARCH_ALIASES.get(arch, arch), "android" in triple


def check_device(root: Path, meta: Any, remote: Remote) -> tuple[Any, str]:
    """The TVM device of the session that runs ``meta``'s target, and the device in words.

    An artifact for another architecture or for OpenCL on a device without it is refused
    before anything is uploaded. A server without LLVM cannot say its architecture; then a
    wrong one shows when the library fails to load.
    """

    wanted = triple(meta.target)
    server = remote.triple()
    if wanted and server and _platform(wanted) != _platform(server):
        raise EdgepruneError(
            f"{root}: built for {wanted} (target {meta.device!r}), but {remote.address} is a {server} device; "
            f"compile it for that device's target"
        )
    kind = device_type(meta.target)
    described = [server] if server else []
    if kind == "cpu":
        dev = remote.session.cpu(0)
    elif kind == "opencl":
        dev = remote.session.cl(0)
        if not remote.call(lambda: dev.exist, "looking for its OpenCL device"):
            raise EdgepruneError(f"{root}: built for OpenCL (target {meta.device!r}), but {remote.address} has no OpenCL device")
        described.append(str(remote.call(lambda: dev.device_name, "asking its OpenCL device's name")))
    else:
        raise EdgepruneError(f"{root}: target kind {kind!r} cannot run through RPC (edgeprune runs 'cpu' and 'opencl')")
    return dev, f"{remote.address} ({', '.join(described)})" if described else str(remote.address)


@dataclass
class RemoteModel:
    """An artifact loaded in a Relax VM on a remote device; calls are bounded by ``remote``."""

    artifact: Any  # compiler.artifact.Artifact over the remote VM and device
    remote: Remote
    device: str
    threads: int
    _ms_per_run: float = field(default=0.0, init=False)  # last seen: sizes the next call's deadline

    @property
    def target(self) -> dict[str, Any]:
        return self.artifact.meta.target

    def first_run(self) -> float:
        first = self.remote.call(self.artifact.first_run_ms, "the first run")
        self._ms_per_run = first
        return first

    def time(self, number: int, repeat: int) -> list[float]:
        expected_s = 2 * self._ms_per_run * number * repeat / 1e3
        timings = self.remote.call(lambda: self.artifact.time(number=number, repeat=repeat), "timing", expected_s)
        self._ms_per_run = sum(timings) / len(timings) / number  # the mean: what a chunk really takes
        return timings

    def __call__(self, *arrays: np.ndarray) -> np.ndarray | tuple[np.ndarray, ...]:
        return self.remote.call(lambda: self.artifact(*arrays), "running the model", 2 * self._ms_per_run / 1e3)


class RPCRunner(Runner):
    """Runs on a device of the farm: see the module docstring."""

    name = "rpc"

    def __init__(self, address: TrackerAddress, timeout_s: float = 60.0, session_timeout_s: float = 1800.0,
                 priority: int = 1) -> None:
        self.address = address
        self.timeout_s = timeout_s
        self.session_timeout_s = session_timeout_s
        self.priority = priority

    @contextmanager
    def open(self, path: Path, threads: int | None = None) -> Iterator[RemoteModel]:
        with self.open_all([path], threads) as (loaded,):
            yield loaded

    @contextmanager
    def open_all(self, paths: Sequence[Path], threads: int | None = None) -> Iterator[list[RemoteModel]]:
        """Every artifact of ``paths`` loaded in one session, so all run on the same device."""
        metas = []
        for path in paths:
            metas.append(read_meta(path))
            if not (path / LIB_FILE).is_file():
                raise EdgepruneError(f"{path / LIB_FILE}: missing")
        remote = Remote(request_session(self.address, self.timeout_s, self.session_timeout_s, self.priority),
                        self.address, self.timeout_s)
        loaded = [self._load(remote, path, meta) for path, meta in zip(paths, metas)]
        if threads:
            remote.call(lambda: remote.session.get_function("runtime.config_threadpool")(_BIG_CORES, threads),
                        f"setting {threads} threads")
        yield [RemoteModel(artifact, remote, described, threads or 0) for artifact, described in loaded]

    def _load(self, remote: Remote, path: Path, meta: Any) -> tuple[Artifact, str]:
        """Upload ``path``'s library into ``remote``'s session and start its VM; (artifact, device in words)."""
        from tvm import relax

        session = remote.session
        lib = path / LIB_FILE
        dev, described = check_device(path, meta, remote)
        name = f"edgeprune-{uuid.uuid4().hex[:12]}.so"  # never an older upload's name
        upload_s = lib.stat().st_size / 1e6  # allow 1 MB/s beyond the timeout
        remote.call(lambda: session.upload(str(lib), target=name), f"uploading {lib}", upload_s)
        try:
            module = remote.call(lambda: session.load_module(name), f"loading {lib}")
        except EdgepruneError as exc:
            raise EdgepruneError(f"{exc}; the library is built for {triple(meta.target) or 'an unknown triple'}") from exc
        vm = remote.call(lambda: relax.VirtualMachine(module, dev), f"starting the VM of {lib}")
        return Artifact(path, meta, vm, dev), described

    def time_kernels(self, libraries: Sequence[KernelLibrary], plan: TimingPlan) -> list[dict[str, float] | JobFailure]:
        """Each library in a session of its own, in as many threads as the key has devices, so
        the tracker, not edgeprune, decides which device takes which library."""
        servers = registered_servers(self.address)
        if servers == 0:
            raise EdgepruneError(f"{self.address}: the tracker has no device under key {self.address.key!r}")
        with ThreadPoolExecutor(max_workers=servers) as pool:
            return list(pool.map(lambda library: self._time_kernel(*library, plan), libraries))

    def _time_kernel(self, path: str, args: tuple, plan: TimingPlan) -> dict[str, float] | JobFailure:
        try:
            session = request_session(self.address, self.timeout_s, session_timeout_s=self.timeout_s).session
            session.upload(path)
            return time_loaded(session.load_module(os.path.basename(path)), session.cpu(), args, plan)
        except Exception as exc:  # noqa: BLE001 - a device that fails a candidate is data
            return JobFailure(f"rpc: {last_line(exc)}")
