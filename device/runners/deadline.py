"""Calls that give up after a deadline, for RPC calls that can block for ever.

TVM's RPC client reads its socket without a timeout: a phone that drops off the network
without closing the connection leaves the call waiting indefinitely. So the call runs in a
daemon thread (TVM releases the GIL during calls) and the caller stops waiting at the
deadline. Then ``cancel`` unblocks the call, e.g. by shutting the session's connection down
(``sever``): a blocked call would otherwise hold the session's lock, and every later use of
the session, even freeing a remote object, would wait on it.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import TypeVar

from edgeprune.base.errors import EdgepruneError

T = TypeVar("T")
CANCEL_GRACE_S = 5.0


class DeadlineExceeded(EdgepruneError):
    """A call did not return in time."""


def call_with_deadline(fn: Callable[[], T], timeout_s: float, what: str,
                       cancel: Callable[[], None] | None = None) -> T:
    """``fn()``, or ``DeadlineExceeded`` naming ``what`` if it has not returned after ``timeout_s``.

    On the deadline ``cancel()`` runs and the call gets ``CANCEL_GRACE_S`` to return. Exceptions
    of ``fn`` are re-raised in the caller.
    """
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller as is
            outcome["error"] = exc

    thread = threading.Thread(target=target, name=f"deadline: {what}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        if cancel is not None:
            cancel()
            thread.join(CANCEL_GRACE_S)
        raise DeadlineExceeded(f"{what}: no answer within {timeout_s:.3g} s")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


def sever(host: str, port: int) -> None:
    """Shut down this process's TCP connections to ``host:port``; calls blocked on them return.

    The sockets stay open (their owner, TVM's RPC channel, closes them): only the connection
    ends, so a pending read fails at once instead of waiting for a peer that went silent.
    """
    import psutil

    try:
        peers = {info[4][0] for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)}
    except OSError:
        return
    for conn in psutil.Process().net_connections(kind="tcp"):
        if conn.fd >= 0 and conn.raddr and conn.raddr.port == port and conn.raddr.ip in peers:
            sock = socket.socket(fileno=conn.fd)
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            finally:
                sock.detach()
