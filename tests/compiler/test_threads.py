"""TVM's thread pool: sizing it must not shrink what the process may use afterwards."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edgeprune.compiler.target import host_cores


@pytest.mark.skipif(host_cores() < 2, reason="needs two cores")
def test_one_thread_then_all_cores_again():
    """Regression: set_num_threads(1) pinned the process to one core, and host_cores() (hence
    the target's num-cores and every later thread count) then read 1 for the rest of the run."""
    code = (
        "from compiler.threads import set_num_threads\n"
        "from compiler.target import host_cores, host_target_dict\n"
        "before = host_cores()\n"
        "set_num_threads(1)\n"
        "assert host_cores() == before and host_target_dict()['num-cores'] == before, host_cores()\n"
        "set_num_threads(before)\n"
        "import os\n"
        "assert len(os.sched_getaffinity(0)) == before, os.sched_getaffinity(0)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
