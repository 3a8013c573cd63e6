"""Ctrl-C that is remembered, and Ctrl-C that waits for the end of the current step.

TVM calls back into Python (legalization, passes written in Python); a ``KeyboardInterrupt``
raised in such a callback reaches the caller as a bare ``RuntimeError``. Inside
``remembered_interrupt()`` SIGINT raises ``KeyboardInterrupt`` as usual and also sets
``requested``, so the command line can tell an interrupted run from a failed one.

An interrupt in the middle of a training step leaves the model half-updated (BatchNorm
statistics already moved by the forward pass, weights not yet stepped), so a state saved
then would not resume to the run it came from. Inside ``deferred_interrupt()`` the first
SIGINT only sets ``requested``; the loop checks it at a step boundary, saves, and raises
``KeyboardInterrupt`` itself. A second SIGINT interrupts at once.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator


class InterruptFlag:
    def __init__(self) -> None:
        self.requested = False


@contextlib.contextmanager
def _handling_sigint(on_sigint: Callable[[InterruptFlag], None]) -> Iterator[InterruptFlag]:
    """SIGINT handled by ``on_sigint(flag)`` inside the block (signals reach the main thread only)."""
    flag = InterruptFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: on_sigint(flag))
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def _defer(flag: InterruptFlag) -> None:
    if flag.requested:
        raise KeyboardInterrupt
    flag.requested = True


def _remember(flag: InterruptFlag) -> None:
    flag.requested = True
    raise KeyboardInterrupt


def deferred_interrupt() -> contextlib.AbstractContextManager[InterruptFlag]:
    return _handling_sigint(_defer)


def remembered_interrupt() -> contextlib.AbstractContextManager[InterruptFlag]:
    return _handling_sigint(_remember)
