"""Runners: where an artifact is timed. ``--device local`` (this CPU) or ``rpc://HOST:PORT/KEY``
(a device of the farm behind a TVM RPC tracker); both return the same ``Measurement``."""

from __future__ import annotations

from edgeprune.base.errors import EdgepruneError
from edgeprune.device.runners.base import Measurement, MeasurementFailed, MeasurementInterrupted, Runner
from edgeprune.device.runners.local import LocalRunner
from edgeprune.device.runners.rpc import RPCRunner
from edgeprune.device.runners.tracker import TrackerAddress

__all__ = ["LocalRunner", "Measurement", "MeasurementFailed", "MeasurementInterrupted", "RPCRunner", "Runner", "runner_for"]


def runner_for(device: str, timeout_s: float = 60.0, priority: int = 1) -> Runner:
    """The runner of a ``--device`` value; ``timeout_s`` and ``priority`` apply to RPC devices."""
    if device == "local":
        return LocalRunner()
    if device.startswith("rpc://"):
        return RPCRunner(TrackerAddress.parse(device), timeout_s=timeout_s, priority=priority)
    raise EdgepruneError(f"--device {device!r}: unknown device (expected local or rpc://HOST:PORT/KEY)")
