"""A compiled kernel timed on this CPU by TVM's own evaluator, as a ``base.timing.Timer``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tvm

from edgeprune.base.timing import Timer


def kernel_timer(lib: Any, args: Sequence[Any], calls: int) -> Timer:
    """Milliseconds per call of a compiled kernel's ``main`` on ``args`` (TVM tensors), over ``calls`` calls."""
    evaluator = lib.mod.time_evaluator("main", tvm.cpu(), number=calls, repeat=1, min_repeat_ms=0)
    return lambda: evaluator(*args).results[0] * 1e3
