"""The one parser of ``--device``: ``local`` (this CPU) or ``rpc://HOST:PORT/KEY`` (a device of
the farm behind a TVM RPC tracker).

A spec gives the three things edgeprune keys on a device: the runner that measures there, the
device key tuning records carry (``local`` or the tracker key: a log measured on one phone of a
kind serves every phone of that kind) and the key the results history files runs under
(``local:<host>`` or ``rpc:<key>``: a tracker's address may change between CI runs, the key
names the kind of phone).
"""

from __future__ import annotations

import platform
from dataclasses import dataclass

from edgeprune.base.errors import EdgepruneError
from edgeprune.device.runners.base import Runner
from edgeprune.device.runners.local import LocalRunner
from edgeprune.device.runners.rpc import RPCRunner
from edgeprune.device.runners.tracker import TrackerAddress

LOCAL = "local"


@dataclass(frozen=True)
class DeviceSpec:
    """A parsed ``--device``; ``tracker`` is ``None`` for this machine."""

    text: str
    tracker: TrackerAddress | None = None

    @classmethod
    def parse(cls, text: str) -> DeviceSpec:
        if text == LOCAL:
            return cls(LOCAL)
        if text.startswith("rpc://"):
            address = TrackerAddress.parse(text)
            return cls(str(address), address)
        raise EdgepruneError(f"--device {text!r}: unknown device (expected local or rpc://HOST:PORT/KEY)")

    @property
    def is_local(self) -> bool:
        return self.tracker is None

    @property
    def tuning_key(self) -> str:
        return LOCAL if self.tracker is None else self.tracker.key

    @property
    def history_key(self) -> str:
        return f"local:{platform.node()}" if self.tracker is None else f"rpc:{self.tracker.key}"

    def runner(self, timeout_s: float = 60.0, priority: int = 1) -> Runner:
        """The runner of this device; every wait on it is bounded by ``timeout_s``."""
        if self.tracker is None:
            return LocalRunner(timeout_s=timeout_s)
        return RPCRunner(self.tracker, timeout_s=timeout_s, priority=priority)

    def __str__(self) -> str:
        return self.text
