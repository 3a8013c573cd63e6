"""Column-sparse weights with a chosen number of distinct patterns (for tests and benchmarks)."""

from __future__ import annotations

import numpy as np


def column_sparse(shape: tuple[int, ...], sparsity: float, patterns: int, seed: int = 0) -> np.ndarray:
    """A random weight whose rows each keep one of ``patterns`` random column sets.

    Each set keeps a column with probability ``1 - sparsity`` (at least one column); rows pick
    their set at random, so rows sharing a pattern are scattered as after real pruning.
    """
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal(shape).astype(np.float32)
    matrix = weight.reshape(shape[0], -1)
    kept = rng.random((patterns, matrix.shape[1])) >= sparsity
    kept[np.arange(patterns), rng.integers(0, matrix.shape[1], patterns)] = True
    matrix *= kept[rng.integers(0, patterns, shape[0])]
    return weight
