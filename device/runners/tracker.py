"""A TVM RPC tracker client whose every wait is bounded.

``tvm.rpc.connect_tracker`` retries a refused connection for 60 s, and ``TrackerSession.request``
waits for a free device under the key with no timeout; neither can be cancelled. This client
speaks the same protocol (``tvm.rpc.base``: the tracker magic, then length-prefixed JSON) over
a socket with timeouts. Closing the socket withdraws a pending request: the tracker skips
requests whose connection has closed and hands the device to the next one.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import urlparse

from edgeprune.base.errors import EdgepruneError, last_line
from edgeprune.device.runners.deadline import call_with_deadline, sever


@dataclass(frozen=True)
class TrackerAddress:
    """``rpc://HOST:PORT/KEY``: a tracker and the key its devices of one kind register under."""

    host: str
    port: int
    key: str

    @classmethod
    def parse(cls, device: str) -> TrackerAddress:
        url = urlparse(device)
        key = url.path.strip("/")
        try:
            port = url.port
        except ValueError:
            port = None
        if url.scheme != "rpc" or not url.hostname or port is None or not key or "/" in key:
            raise EdgepruneError(f"--device {device!r}: expected rpc://HOST:PORT/KEY (e.g. rpc://127.0.0.1:9190/s21)")
        return cls(url.hostname, port, key)

    def __str__(self) -> str:
        return f"rpc://{self.host}:{self.port}/{self.key}"


def _connect(address: TrackerAddress, timeout_s: float) -> socket.socket:
    from tvm.rpc.base import RPC_TRACKER_MAGIC, recvall

    where = f"{address}: the RPC tracker at {address.host}:{address.port}"
    try:
        sock = socket.create_connection((address.host, address.port), timeout=timeout_s)
    except OSError as exc:
        raise EdgepruneError(f"{where} cannot be reached ({exc.strerror or exc})") from exc
    try:
        sock.sendall(struct.pack("<i", RPC_TRACKER_MAGIC))
        magic = struct.unpack("<i", recvall(sock, 4))[0]
    except OSError as exc:
        sock.close()
        raise EdgepruneError(f"{where} does not answer as a TVM RPC tracker ({exc})") from exc
    if magic != RPC_TRACKER_MAGIC:
        sock.close()
        raise EdgepruneError(f"{where} is not a TVM RPC tracker")
    return sock


def summary(address: TrackerAddress, timeout_s: float = 10.0) -> dict[str, Any]:
    """The tracker's summary: ``server_info`` (registered servers) and ``queue_info`` per key."""
    from tvm.rpc.base import TrackerCode, recvjson, sendjson

    sock = _connect(address, timeout_s)
    try:
        sendjson(sock, [TrackerCode.SUMMARY])
        reply = recvjson(sock)
    except OSError as exc:
        raise EdgepruneError(f"{address}: the tracker did not answer a summary request ({exc})") from exc
    finally:
        sock.close()
    if not isinstance(reply, list) or reply[0] != TrackerCode.SUCCESS:
        raise EdgepruneError(f"{address}: the tracker answered {reply!r} to a summary request")
    return reply[1]


def registered_servers(address: TrackerAddress, timeout_s: float = 10.0) -> int:
    """Servers registered under the address's key, free or busy."""
    servers = summary(address, timeout_s)["server_info"]
    return sum(1 for s in servers if s.get("key") == f"server:{address.key}")


class Granted(NamedTuple):
    """An RPC session with a device, and the address of the device's server."""

    session: Any
    host: str
    port: int


def request_session(address: TrackerAddress, timeout_s: float, session_timeout_s: float = 0, priority: int = 1) -> Granted:
    """An RPC session with a free device under the key, or an error within about ``timeout_s``.

    ``session_timeout_s`` (0 = none) lets the device's server end the session after that long,
    so a client that vanished never holds a phone for good.
    """
    from tvm import rpc
    from tvm.rpc.base import TrackerCode, recvjson, sendjson

    deadline = time.monotonic() + timeout_s
    sock = _connect(address, timeout_s)
    try:
        sendjson(sock, [TrackerCode.REQUEST, address.key, "", priority])
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        reply = recvjson(sock)
    except TimeoutError:
        reply = None
    except OSError as exc:
        raise EdgepruneError(f"{address}: the tracker dropped the request ({exc})") from exc
    finally:
        sock.close()
    if reply is None:
        raise EdgepruneError(_no_device(address, timeout_s))
    if not isinstance(reply, list) or reply[0] != TrackerCode.SUCCESS:
        raise EdgepruneError(f"{address}: the tracker answered {reply!r} to a device request")
    host, port, matchkey = reply[1]
    what = f"{address}: connecting to the device's server at {host}:{port}"
    try:
        session = call_with_deadline(lambda: rpc.connect(host, port, matchkey, int(session_timeout_s)),
                                     max(1.0, deadline - time.monotonic()), what, cancel=lambda: sever(host, port))
    except EdgepruneError:
        raise
    except Exception as exc:  # noqa: BLE001 - TVM raises RuntimeError subclasses of many kinds
        raise EdgepruneError(f"{what} failed ({last_line(exc)})") from exc
    return Granted(session, host, port)


def _no_device(address: TrackerAddress, timeout_s: float) -> str:
    try:
        count = registered_servers(address, timeout_s=5.0)
    except EdgepruneError:
        count = None
    if count == 0:
        why = f"no server is registered under key {address.key!r}; `python -m tvm.exec.query_rpc_tracker " \
              f"--host {address.host} --port {address.port}` lists the keys"
    elif count is None:
        why = "the tracker did not answer a summary request"
    else:
        why = f"{count} registered under the key, all busy"
    return f"{address}: no free device within {timeout_s:g} s ({why})"

