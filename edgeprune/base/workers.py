"""A pool of worker processes in which a crash or a hang costs one job, never the run.

Each worker is a spawned process (no inherited TVM state, no inherited locks) that serves one
job at a time over a pipe and ignores SIGINT, so Ctrl-C reaches only the tuner, which stops
cleanly. A job that kills its worker (a segfault in TVM, ``os._exit``) or runs past its
timeout is answered with a ``JobFailure``; the worker is killed if need be and replaced.
``concurrent.futures.ProcessPoolExecutor`` cannot do this: one dead worker breaks the whole
pool without saying which job killed it, and a hung job cannot be cancelled.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

STARTUP_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class JobFailure:
    """Why a job gave no result (its exception, a crash of its worker, or a timeout)."""

    error: str


def _exit_with_parent(parent: int) -> None:
    """A worker whose tuner was killed (SIGKILL leaves no time to stop it) exits by itself."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def _serve(conn: Connection, warmup: Callable[[], None] | None, parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    if warmup is not None:
        warmup()
    conn.send("ready")
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        fn, args = job
        try:
            result: Any = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - every failure of a candidate is data
            last = traceback.format_exception_only(type(exc), exc)[-1].strip()
            result = JobFailure(last.splitlines()[-1] if last else type(exc).__name__)
        conn.send(result)


class _Worker:
    def __init__(self, ctx: Any, warmup: Callable[[], None] | None) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child, warmup, os.getpid()), daemon=True)
        self.process.start()
        child.close()
        self.ready = False

    def stop(self, kill: bool = False) -> None:
        if self.process.is_alive() and not kill:
            try:
                self.conn.send(None)
            except OSError:
                pass
            self.process.join(2.0)
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self.conn.close()


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"worker killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"worker killed by signal {-code}"
    return f"worker exited with code {code}"


class WorkerPool:
    """``size`` spawned workers; ``map`` runs jobs on them, each job within ``timeout_s``.

    ``warmup`` (a picklable function) runs once in each worker before it takes jobs, e.g. to
    import TVM, so that import time is not charged to the first job's timeout.
    """

    def __init__(self, size: int, warmup: Callable[[], None] | None = None) -> None:
        self._ctx = multiprocessing.get_context("spawn")
        self._warmup = warmup
        self._workers = [_Worker(self._ctx, warmup) for _ in range(max(1, size))]

    @property
    def size(self) -> int:
        return len(self._workers)

    def _await_ready(self, worker: _Worker) -> None:
        if worker.ready:
            return
        if not worker.conn.poll(STARTUP_TIMEOUT_S) or worker.conn.recv() != "ready":
            raise RuntimeError(f"tuner worker did not start ({_describe_exit(worker.process.exitcode)})")
        worker.ready = True

    def _replace(self, index: int) -> None:
        self._workers[index].stop(kill=True)
        self._workers[index] = _Worker(self._ctx, self._warmup)

    def map(self, fn: Callable[..., Any], jobs: Sequence[tuple], timeout_s: float) -> list[Any]:
        """``fn(*args)`` for every ``args`` in ``jobs``, in order; failures as ``JobFailure``."""
        results: list[Any] = [None] * len(jobs)
        pending = list(range(len(jobs)))
        running: dict[int, tuple[int, float]] = {}  # worker index -> (job index, deadline)
        while pending or running:
            for w, worker in enumerate(self._workers):
                if w in running or not pending:
                    continue
                self._await_ready(worker)
                job = pending.pop(0)
                worker.conn.send((fn, jobs[job]))
                running[w] = (job, time.monotonic() + timeout_s)
            conns = {self._workers[w].conn: w for w in running}
            sentinels = {self._workers[w].process.sentinel: w for w in running}
            next_deadline = min(deadline for _, deadline in running.values())
            ready = wait([*conns, *sentinels], timeout=max(0.0, next_deadline - time.monotonic()))
            done: set[int] = set()
            for obj in ready:
                w = conns.get(obj, sentinels.get(obj))
                if w is None or w in done:
                    continue
                job, _ = running[w]
                worker = self._workers[w]
                try:
                    results[job] = worker.conn.recv() if worker.conn.poll() else None
                except (EOFError, OSError):
                    results[job] = None
                if results[job] is None:  # the worker died in the job
                    worker.process.join(5.0)
                    results[job] = JobFailure(_describe_exit(worker.process.exitcode))
                    self._replace(w)
                done.add(w)
            now = time.monotonic()
            for w, (job, deadline) in list(running.items()):
                if w not in done and now >= deadline:
                    results[job] = JobFailure(f"timed out after {timeout_s:g} s")
                    self._replace(w)
                    done.add(w)
            for w in done:
                running.pop(w)
        return results

    def close(self) -> None:
        for worker in self._workers:
            worker.stop()

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
