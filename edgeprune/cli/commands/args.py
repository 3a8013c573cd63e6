"""Argument types shared by several verbs."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from pathlib import Path

from edgeprune.base.errors import EdgepruneError

MAX_SIDE = 16384  # pixels on an image side (the largest texture side of mobile GPUs)


def size_hw(text: str) -> tuple[int, int]:
    """``512`` or ``512x1024`` (height x width)."""
    parts = text.lower().split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected H or HxW, got {text!r}") from None
    if len(values) == 1:
        values *= 2
    if len(values) != 2 or min(values) <= 0 or max(values) > MAX_SIDE:
        raise argparse.ArgumentTypeError(f"expected H or HxW with sizes from 1 to {MAX_SIDE}, got {text!r}")
    return values[0], values[1]


def _int_at_least(text: str, low: int, expected: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def int_in(low: int, high: int) -> Callable[[str], int]:
    """The type of an integer option in ``[low, high]``: every numeric option has both bounds."""
    expected = f"an integer from {low} to {high}"

    def parse(text: str) -> int:
        value = _int_at_least(text, low, expected)
        if value > high:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


def float_in(low: float, high: float, low_open: bool = False) -> Callable[[str], float]:
    """The type of a real option in ``[low, high]`` (``(low, high]`` with ``low_open``)."""
    expected = f"a number {'above' if low_open else 'from'} {low:g} {'and at most' if low_open else 'to'} {high:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not math.isfinite(value) or value > high or value < low or (low_open and value == low):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


positive_int = int_in(1, 1_000_000_000)
seconds = float_in(0.0, 86_400.0)  # a duration: at most a day
SEED = int_in(0, 2**32 - 1)
THREADS = int_in(1, 1024)
WORKERS = int_in(0, 256)
ITERATIONS = int_in(1, 100_000_000)
BATCH = int_in(1, 4096)
IMAGES = int_in(1, 10_000_000)


def input_shape(text: str) -> tuple[int, ...]:
    """``1,3,H,W`` (``1,H,W,3`` for a TFLite file): four positive integers."""
    try:
        dims = tuple(int(p) for p in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N,C,H,W (TFLite: N,H,W,C), got {text!r}") from None
    if len(dims) != 4 or min(dims) <= 0 or max(dims) > MAX_SIDE:
        raise argparse.ArgumentTypeError(f"expected four positive integers N,C,H,W (TFLite: N,H,W,C), each at most "
                                         f"{MAX_SIDE}, got {text!r}")
    return dims


def sparse_fraction(text: str) -> float:
    """``auto`` (convs with at least half their weights zero) or a fraction in (0, 1]."""
    if text == "auto":
        return 0.5
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a fraction of zero weights, got {text!r}") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"the fraction of zero weights must be in (0, 1], got {text!r}")
    return value


def output_file(text: str) -> Path:
    """A file to write; refused at once if it names a directory, before any work is done."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a directory, expected a file to write")
    return path


def cores_here() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0))


def check_threads_here(threads: int | None) -> None:
    """``--threads`` for this machine: more threads than cores only time the contention."""
    if threads is not None and threads > cores_here():
        raise EdgepruneError(f"--threads {threads}: this machine has {cores_here()} cores to run on")
