"""The grouped column-sparse format of a conv/linear weight (seed paper, Appendix F).

The weight is taken in its GEMM view ``W[rows, cols]`` (rows = output channels, cols =
``in/groups * kh * kw`` for a conv, ``in_features`` for a linear layer). Rows are reordered so
that rows keeping the same columns are adjacent; each run of such rows is a *group* that stores
its kept column indices once and its weights as a dense ``rows_g x cols_g`` block::

    row_order    [rows]   stored row i is row row_order[i] of W      (uint16 or int32)
    row_offsets  [G+1]    group g holds stored rows row_offsets[g]:row_offsets[g+1]   (int32)
    col_offsets  [G+1]    its columns are col_indices[col_offsets[g]:col_offsets[g+1]] (int32)
    col_indices  [K]      strictly increasing within a group, < cols    (uint16 or int32)
    values       [V]      group g's block, row-major, after the blocks of groups < g (float32)

``V = sum_g rows_g * cols_g``; a group may keep explicit zeros (``reorder`` merges near-
identical patterns into their union when that makes groups larger). Compared with CSR, which
stores one column index per nonzero and one pointer per row, this stores one index per kept
column per *group* and the permutation once.

On disk it is an ``.npz`` (no pickles) with ``format``, ``version``, ``shape`` (rows, cols) and
``kernel_shape`` (the original weight's shape) beside those arrays; ``load`` checks every
offset and index before anything reads through them, and names the file in its error.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeprune.base.errors import EdgepruneError
from edgeprune.base.fileio import atomic_path
from edgeprune.base.formats import check_version

FORMAT = "edgeprune-grouped-column-sparse"
VERSION = 1
_ARRAYS = ("row_order", "row_offsets", "col_offsets", "col_indices", "values")


def index_dtype(extent: int) -> np.dtype:
    """The narrowest unsigned integer type that indexes ``extent`` items (same rule for every format)."""
    return np.dtype(np.uint16) if extent <= np.iinfo(np.uint16).max + 1 else np.dtype(np.int32)


@dataclass(frozen=True)
class RowGroup:
    """Rows (indices into the original matrix) that share the kept columns ``cols``."""

    rows: np.ndarray
    cols: np.ndarray


@dataclass(frozen=True)
class GroupedColumnSparse:
    """A weight in the grouped column-sparse format (see the module docstring)."""

    shape: tuple[int, int]
    kernel_shape: tuple[int, ...]
    row_order: np.ndarray
    row_offsets: np.ndarray
    col_offsets: np.ndarray
    col_indices: np.ndarray
    values: np.ndarray

    @property
    def num_groups(self) -> int:
        return len(self.row_offsets) - 1

    @property
    def value_offsets(self) -> np.ndarray:
        """Start of each group's block in ``values`` ([G+1])."""
        sizes = np.diff(self.row_offsets).astype(np.int64) * np.diff(self.col_offsets)
        return np.concatenate([[0], np.cumsum(sizes)])

    def group(self, g: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(original rows, kept columns, dense ``rows x cols`` block) of group ``g``."""
        r0, r1 = int(self.row_offsets[g]), int(self.row_offsets[g + 1])
        c0, c1 = int(self.col_offsets[g]), int(self.col_offsets[g + 1])
        v0 = int(self.value_offsets[g])
        block = self.values[v0 : v0 + (r1 - r0) * (c1 - c0)].reshape(r1 - r0, c1 - c0)
        return self.row_order[r0:r1].astype(np.int64), self.col_indices[c0:c1].astype(np.int64), block

    @property
    def nbytes(self) -> int:
        """Bytes of the stored arrays (what a device reads); the npz header is not counted."""
        return sum(getattr(self, name).nbytes for name in _ARRAYS)

    @property
    def explicit_zeros(self) -> int:
        return int(np.count_nonzero(self.values == 0))

    def dense(self) -> np.ndarray:
        """The GEMM-view matrix, in the original row order."""
        out = np.zeros(self.shape, dtype=self.values.dtype)
        for g in range(self.num_groups):
            rows, cols, block = self.group(g)
            out[np.ix_(rows, cols)] = block
        return out

    def weight(self) -> np.ndarray:
        """The original weight (``kernel_shape``)."""
        return self.dense().reshape(self.kernel_shape)


def gemm_view(weight: np.ndarray) -> np.ndarray:
    """``[out, in/groups * kh * kw]`` of a conv weight (a 2-d linear weight is returned as is)."""
    weight = np.asarray(weight)
    if weight.ndim < 2:
        raise ValueError(f"a weight needs at least 2 dimensions, got shape {weight.shape}")
    return weight.reshape(weight.shape[0], -1)


def encode(weight: np.ndarray, groups: list[RowGroup]) -> GroupedColumnSparse:
    """Store ``weight`` (a conv or linear weight) with the row grouping ``groups``.

    Every row must be in exactly one group and every nonzero inside its group's columns;
    otherwise the encoding would drop weights, and ``ValueError`` says where.
    """
    weight = np.asarray(weight, dtype=np.float32)
    matrix = gemm_view(weight)
    rows, cols = matrix.shape
    order = np.concatenate([np.asarray(g.rows, dtype=np.int64) for g in groups]) if groups else np.zeros(0, np.int64)
    if len(order) != rows or not np.array_equal(np.sort(order), np.arange(rows)):
        raise ValueError(f"the groups must hold every one of the {rows} rows exactly once")
    kept = np.zeros_like(matrix, dtype=bool)
    col_lists = []
    for g in groups:
        group_cols = np.asarray(g.cols, dtype=np.int64)
        if len(group_cols) and (np.any(np.diff(group_cols) <= 0) or group_cols[0] < 0 or group_cols[-1] >= cols):
            raise ValueError(f"group columns must be increasing and within [0, {cols})")
        kept[np.ix_(np.asarray(g.rows, dtype=np.int64), group_cols)] = True
        col_lists.append(group_cols)
    lost = np.argwhere((matrix != 0) & ~kept)
    if len(lost):
        r, c = lost[0]
        raise ValueError(f"weight[{r}, {c}] = {matrix[r, c]} is nonzero but outside its group's columns")
    row_index, col_index = index_dtype(rows), index_dtype(cols)
    values = [matrix[np.ix_(np.asarray(g.rows, dtype=np.int64), c)].reshape(-1) for g, c in zip(groups, col_lists)]
    return GroupedColumnSparse(
        shape=(rows, cols),
        kernel_shape=tuple(int(d) for d in weight.shape),
        row_order=order.astype(row_index),
        row_offsets=np.concatenate([[0], np.cumsum([len(g.rows) for g in groups])]).astype(np.int32),
        col_offsets=np.concatenate([[0], np.cumsum([len(c) for c in col_lists])]).astype(np.int32),
        col_indices=(np.concatenate(col_lists) if col_lists else np.zeros(0)).astype(col_index),
        values=np.concatenate(values).astype(np.float32) if values else np.zeros(0, np.float32),
    )


# --- files ----------------------------------------------------------------------------------


def save(path: str | os.PathLike[str], sparse: GroupedColumnSparse) -> None:
    """Write ``sparse`` to ``path`` (an ``.npz``), atomically."""
    arrays = {name: getattr(sparse, name) for name in _ARRAYS}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(
                f,
                format=np.array(FORMAT),
                version=np.array(VERSION),
                shape=np.array(sparse.shape, dtype=np.int64),
                kernel_shape=np.array(sparse.kernel_shape, dtype=np.int64),
                **arrays,
            )


def load(path: str | os.PathLike[str]) -> GroupedColumnSparse:
    """Read and validate a file written by ``save``; any problem is an ``EdgepruneError`` naming ``path``."""
    path = Path(path)
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError("a single array, not an .npz archive")
        with loaded as npz:
            fields = {name: npz[name] for name in npz.files}
    except FileNotFoundError:
        raise EdgepruneError(f"{path}: no such file") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise EdgepruneError(f"{path}: not a readable sparse weight file ({exc})") from exc
    try:
        return _validated(fields)
    except ValueError as exc:
        raise EdgepruneError(f"{path}: {exc}") from None


def _validated(fields: dict[str, np.ndarray]) -> GroupedColumnSparse:
    missing = [k for k in ("format", "version", "shape", "kernel_shape", *_ARRAYS) if k not in fields]
    if missing:
        raise ValueError(f"missing array(s) {', '.join(missing)}")
    if fields["format"].shape != () or str(fields["format"]) != FORMAT:
        raise ValueError(f"not a {FORMAT} file")
    check_version(int(fields["version"]) if fields["version"].shape == () else fields["version"].tolist(), VERSION,
                  field="version")
    shape, kernel_shape = fields["shape"], fields["kernel_shape"]
    if shape.shape != (2,) or shape.dtype.kind not in "iu" or np.any(shape < 0):
        raise ValueError(f"bad shape {shape.tolist()}")
    rows, cols = int(shape[0]), int(shape[1])
    valid_kernel = kernel_shape.dtype.kind in "iu" and kernel_shape.ndim == 1 and len(kernel_shape) >= 2
    if not valid_kernel or np.any(kernel_shape <= 0) or int(kernel_shape[0]) != rows or int(np.prod(kernel_shape[1:])) != cols:
        raise ValueError(f"kernel_shape {kernel_shape.tolist()} does not match the matrix shape {[rows, cols]}")
    arrays = {name: fields[name] for name in _ARRAYS}
    for name in _ARRAYS:
        expected = "f" if name == "values" else "iu"
        if arrays[name].ndim != 1 or arrays[name].dtype.kind not in expected:
            raise ValueError(f"{name} must be a 1-d {'float' if expected == 'f' else 'integer'} array")
    order, row_off, col_off, col_idx, values = (arrays[n] for n in _ARRAYS)
    if len(order) != rows or not np.array_equal(np.sort(order.astype(np.int64)), np.arange(rows)):
        raise ValueError(f"row_order is not a permutation of the {rows} rows")
    _check_offsets("row_offsets", row_off, rows)
    _check_offsets("col_offsets", col_off, len(col_idx))
    if len(row_off) != len(col_off):
        raise ValueError(f"row_offsets has {len(row_off)} entries, col_offsets {len(col_off)}: group counts differ")
    for g in range(len(col_off) - 1):
        group_cols = col_idx[col_off[g] : col_off[g + 1]].astype(np.int64)
        if len(group_cols) and (group_cols[0] < 0 or group_cols[-1] >= cols or np.any(np.diff(group_cols) <= 0)):
            raise ValueError(f"group {g}: column indices must be increasing and within [0, {cols})")
    sizes = np.diff(row_off).astype(np.int64) * np.diff(col_off)
    if len(values) != int(sizes.sum()):
        raise ValueError(f"values has {len(values)} entries, the groups need {int(sizes.sum())}")
    return GroupedColumnSparse(
        shape=(rows, cols),
        kernel_shape=tuple(int(d) for d in kernel_shape),
        row_order=order,
        row_offsets=row_off.astype(np.int32),
        col_offsets=col_off.astype(np.int32),
        col_indices=col_idx,
        values=values.astype(np.float32),
    )


def _check_offsets(name: str, offsets: np.ndarray, end: int) -> None:
    if len(offsets) < 1 or int(offsets[0]) != 0 or int(offsets[-1]) != end or np.any(np.diff(offsets.astype(np.int64)) < 0):
        raise ValueError(f"{name} must rise from 0 to {end} without decreasing")
