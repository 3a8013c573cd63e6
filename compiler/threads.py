"""The TVM runtime's worker-thread count.

Left alone, TVM runs ``TVM_NUM_THREADS`` threads, or half the x86 hardware threads, read once
when its pool starts. ``set_num_threads`` reconfigures the pool at any time: mode -3 ("share
all cores") with an explicit CPU list sets the pool size to the list's length.
"""

from __future__ import annotations

import os

import tvm

from edgeprune.compiler.target import host_cores, host_cpus

_SHARE_ALL_CORES = -3


def default_num_threads() -> int:
    """``TVM_NUM_THREADS`` if set, else every core this process may use."""
    value = os.environ.get("TVM_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else host_cores()


def set_num_threads(n: int) -> None:
    allowed = host_cpus()
    cpus = [str(allowed[i % len(allowed)]) for i in range(max(1, n))]
    tvm.get_global_func("runtime.config_threadpool")(_SHARE_ALL_CORES, len(cpus), cpus)
