"""Progress for long work: a live bar on a terminal, periodic plain lines in logs and CI."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm


class Progress:
    """Counts steps of a long task and shows where it stands.

    On a terminal it draws a tqdm bar; elsewhere (CI logs, files) a carriage-return bar is
    unreadable, so it prints one line every ``interval_s`` seconds and one at the end.
    ``status`` holds short key/value figures (loss, best latency, ...) shown with the count.
    """

    def __init__(
        self,
        total: int,
        desc: str,
        initial: int = 0,
        interval_s: float = 10.0,
        stream: TextIO | None = None,
        enabled: bool = True,
    ) -> None:
        self.total = total
        self.desc = desc
        self.done = initial
        self.enabled = enabled
        self._stream = stream or sys.stderr
        self._interval_s = interval_s
        self._start = time.monotonic()
        self._start_count = initial
        self._last_line = 0.0
        self._status: dict[str, str] = {}
        self._bar = None
        if enabled and self._stream.isatty():
            self._bar = tqdm(total=total, initial=initial, desc=desc, file=self._stream, dynamic_ncols=True)

    def update(self, n: int = 1, **status: float | int | str) -> None:
        self.done += n
        self._status.update({k: _fmt(v) for k, v in status.items()})
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.set_postfix(self._status, refresh=False)
            self._bar.update(n)
            return
        now = time.monotonic()
        if now - self._last_line >= self._interval_s or self.done >= self.total:
            self._last_line = now
            self.write(self._line(now))

    def write(self, message: str) -> None:
        """Print a message without breaking the bar."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(message, file=self._stream)
        else:
            print(message, file=self._stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _line(self, now: float) -> str:
        elapsed = now - self._start
        rate = (self.done - self._start_count) / elapsed if elapsed > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 else float("nan")
        figures = " ".join(f"{k} {v}" for k, v in self._status.items())
        pct = 100.0 * self.done / self.total if self.total else 100.0
        eta = _clock(left) if left == left else "?"
        return f"{self.desc}: {self.done}/{self.total} ({pct:.0f}%) {figures} elapsed {_clock(elapsed)} left {eta}".rstrip()


def _fmt(value: float | int | str) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
