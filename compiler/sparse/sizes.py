"""Storage bytes of a GEMM-view weight in the usual formats, for comparison with ours.

Every format is charged float32 values, and the same index width ``format.index_dtype``
gives ours (uint16 up to 65536 columns or blocks, else int32) for its column indices, with
int32 row pointers: what a fair device-side implementation of each would store. The
structures themselves (nonzeros, stored blocks) come from ``scipy.sparse``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse

from edgeprune.compiler.sparse.format import index_dtype

_VALUE = 4
_POINTER = 4


def dense_bytes(matrix: np.ndarray) -> int:
    return int(matrix.size) * _VALUE


def csr_bytes(matrix: np.ndarray) -> int:
    """Values and a column index per nonzero, a pointer per row (+1)."""
    csr = scipy.sparse.csr_matrix(matrix)
    return int(csr.nnz) * (_VALUE + index_dtype(matrix.shape[1]).itemsize) + (matrix.shape[0] + 1) * _POINTER


def bsr_block(shape: tuple[int, int], preferred: tuple[int, int] = (4, 4)) -> tuple[int, int]:
    """``preferred`` where it tiles ``shape``, else the largest of 4x1, 2x2, 2x1, 1x1 that does."""
    for block in (preferred, (4, 1), (2, 2), (2, 1), (1, 1)):
        if shape[0] % block[0] == 0 and shape[1] % block[1] == 0:
            return block
    raise AssertionError("1x1 tiles every shape")


def bsr_bytes(matrix: np.ndarray, block: tuple[int, int] | None = None) -> int:
    """Dense ``block`` values and a block-column index per stored block, a pointer per block row."""
    block = block or bsr_block(matrix.shape)
    bsr = scipy.sparse.bsr_matrix(matrix, blocksize=block)
    bsr.eliminate_zeros()  # keep only blocks holding a nonzero
    stored = int(bsr.indices.size)
    block_cols = matrix.shape[1] // block[1]
    return stored * (block[0] * block[1] * _VALUE + index_dtype(block_cols).itemsize) + (
        matrix.shape[0] // block[0] + 1
    ) * _POINTER
