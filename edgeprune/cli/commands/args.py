"""Argument types shared by several verbs."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from edgeprune.base.errors import EdgepruneError


def size_hw(text: str) -> tuple[int, int]:
    """``512`` or ``512x1024`` (height x width)."""
    parts = text.lower().split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected H or HxW, got {text!r}") from None
    if len(values) == 1:
        values *= 2
    if len(values) != 2 or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected H or HxW with positive sizes, got {text!r}")
    return values[0], values[1]


def _int_at_least(text: str, low: int, expected: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    return _int_at_least(text, 1, "a positive integer")


def non_negative_int(text: str) -> int:
    return _int_at_least(text, 0, "an integer >= 0")


def seconds(text: str) -> float:
    """A duration in seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected seconds >= 0, got {text!r}")
    return value


def input_shape(text: str) -> tuple[int, ...]:
    """``1,3,H,W``: four positive integers."""
    try:
        dims = tuple(int(p) for p in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N,C,H,W, got {text!r}") from None
    if len(dims) != 4 or min(dims) <= 0:
        raise argparse.ArgumentTypeError(f"expected four positive integers N,C,H,W, got {text!r}")
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
