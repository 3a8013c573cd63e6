"""Measuring candidates on a real TVM RPC farm (tracker + two servers on 127.0.0.1)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from edgeprune.compiler.tuner.measure import Measurer
from edgeprune.device.runners.kernels import TimingPlan
from edgeprune.device.runners.localfarm import stop
from edgeprune.device.runners.tracker import registered_servers
from edgeprune.device.spec import DeviceSpec


def test_measurements_spread_over_every_device_under_the_key(farm, conv1x1_task, host_target):
    with ThreadPoolExecutor(2) as pool:  # both import TVM at once
        servers = list(pool.map(lambda _: farm.server("tuner"), range(2)))
    try:
        deadline = time.monotonic() + 90
        while registered_servers(farm.address("tuner")) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert registered_servers(farm.address("tuner")) == 2
        measurer = Measurer(DeviceSpec.parse(str(farm.address("tuner"))), TimingPlan(repeat=2, min_repeat_ms=2),
                            host_target, builders=2, build_timeout_s=60, timeout_s=60)
        try:
            space = conv1x1_task.space
            configs = [space.config(g) for g in space.valid_genes()[:6]]
            outcomes = measurer.measure([(conv1x1_task.kernel, c) for c in configs])
        finally:
            measurer.close()
        assert measurer.device_key == "tuner"
        assert [o.error for o in outcomes] == [None] * 6 and all(o.latency["median_ms"] > 0 for o in outcomes)
        loads = [proc.log.read_text().count("load_module") for proc in servers]
        assert sum(loads) == 6 and min(loads) >= 1, loads
    finally:
        for proc in servers:
            stop(proc)
