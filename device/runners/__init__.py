"""Runners: where an artifact is timed. ``--device local`` here; ``rpc://`` phones come next."""

from __future__ import annotations

from device.runners.local import LocalRunner
from edgeprune.errors import EdgepruneError


def runner_for(device: str) -> LocalRunner:
    if device == "local":
        return LocalRunner()
    raise EdgepruneError(f"--device {device!r}: unknown device (this edgeprune measures 'local'; rpc:// comes with the device farm)")
