"""Runners: where an artifact or a kernel is timed. ``--device local`` (this CPU) or
``rpc://HOST:PORT/KEY`` (a device of the farm behind a TVM RPC tracker); both return the same
``Measurement``. ``device.spec.DeviceSpec`` parses ``--device`` and makes the runner."""

from __future__ import annotations

from edgeprune.device.runners.base import Measurement, MeasurementFailed, MeasurementInterrupted, Runner
from edgeprune.device.runners.local import LocalRunner
from edgeprune.device.runners.rpc import RPCRunner

__all__ = ["LocalRunner", "Measurement", "MeasurementFailed", "MeasurementInterrupted", "RPCRunner", "Runner"]
