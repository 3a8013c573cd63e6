"""The grouped column-sparse format: exact round trips, sizes against dense/CSR/BSR, bad files."""

from __future__ import annotations

import numpy as np
import pytest

from edgeprune.base.errors import EdgepruneError
from edgeprune.compiler.sparse import format as fmt
from edgeprune.compiler.sparse.reorder import consecutive_groups, reorder
from edgeprune.compiler.sparse.sizes import bsr_bytes, csr_bytes, dense_bytes
from edgeprune.compiler.sparse.synthetic import column_sparse


@pytest.mark.parametrize("shape", [(30, 13, 3, 3), (64, 96, 1, 1), (7, 5)])
@pytest.mark.parametrize("merge", [False, True])
def test_encode_decode_and_file_round_trip_exactly(tmp_path, shape, merge):
    weight = column_sparse(shape, 0.75, patterns=4, seed=len(shape))
    sparse = fmt.encode(weight, reorder(weight, merge=merge))
    assert np.array_equal(sparse.weight(), weight)
    fmt.save(tmp_path / "w.npz", sparse)
    loaded = fmt.load(tmp_path / "w.npz")
    assert np.array_equal(loaded.weight(), weight)
    assert loaded.kernel_shape == weight.shape and loaded.nbytes == sparse.nbytes


def test_encode_refuses_a_grouping_that_drops_weights():
    weight = column_sparse((8, 6), 0.5, patterns=2)
    groups = consecutive_groups(weight)
    short = [fmt.RowGroup(g.rows, g.cols[1:]) for g in groups]
    with pytest.raises(ValueError, match="outside its group's columns"):
        fmt.encode(weight, short)
    with pytest.raises(ValueError, match="exactly once"):
        fmt.encode(weight, groups[1:])


@pytest.mark.parametrize("sparsity", [0.5, 0.75, 0.9])
def test_grouped_format_is_smaller_than_csr_bsr_and_dense_with_few_patterns(sparsity):
    weight = column_sparse((128, 64, 1, 1), sparsity, patterns=8)
    matrix = fmt.gemm_view(weight)
    ours = fmt.encode(weight, reorder(weight, merge=False)).nbytes
    assert ours < csr_bytes(matrix) < dense_bytes(matrix)
    assert ours < bsr_bytes(matrix)
    # CSR: 4 bytes of value + 2 of column index per nonzero; ours ~4 per nonzero + indices per group.
    nnz = int(np.count_nonzero(matrix))
    assert csr_bytes(matrix) == nnz * 6 + 129 * 4
    assert ours < nnz * 4 + 8 * 64 * 2 + 128 * 2 + 2 * 9 * 4 + 1


def test_without_shared_patterns_grouping_costs_more_than_csr_does():
    # Every row its own pattern: one column list per row, as CSR, plus offsets and the order.
    weight = np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32)
    weight *= np.random.default_rng(1).random((64, 64)) >= 0.75
    groups = reorder(weight, merge=False)
    assert len(groups) == 64
    assert fmt.encode(weight, groups).nbytes > csr_bytes(fmt.gemm_view(weight))


def _saved(tmp_path, **changes):
    weight = column_sparse((12, 4, 3, 3), 0.75, patterns=3)
    sparse = fmt.encode(weight, reorder(weight))
    fmt.save(tmp_path / "ok.npz", sparse)
    with np.load(tmp_path / "ok.npz") as npz:
        fields = {k: npz[k] for k in npz.files}
    fields.update(changes)
    fields = {k: v for k, v in fields.items() if v is not None}
    np.savez(tmp_path / "bad.npz", **fields)
    return tmp_path / "bad.npz", sparse


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: {"version": np.array(2)}, "version 2 is not supported"),
        (lambda s: {"format": np.array("other")}, "not a edgeprune-grouped-column-sparse file"),
        (lambda s: {"values": None}, "missing array"),
        (lambda s: {"row_offsets": s.row_offsets[::-1].copy()}, "row_offsets must rise"),
        (lambda s: {"col_offsets": np.append(s.col_offsets[:-1], s.col_offsets[-1] + 5)}, "col_offsets must rise"),
        (lambda s: {"col_indices": s.col_indices + 1000}, "within \\[0, 36\\)"),
        (lambda s: {"row_order": np.zeros_like(s.row_order)}, "not a permutation"),
        (lambda s: {"values": s.values[:-1]}, "values has"),
        (lambda s: {"values": s.values.astype(np.int32)}, "float array"),
        (lambda s: {"kernel_shape": np.array([12, 4, 3, 2])}, "does not match"),
    ],
)
def test_malformed_files_are_rejected_with_the_file_named(tmp_path, change, message):
    _, sparse = _saved(tmp_path)
    path, _ = _saved(tmp_path, **change(sparse))
    with pytest.raises(EdgepruneError, match=message) as info:
        fmt.load(path)
    assert str(path) in str(info.value)


def test_truncated_and_missing_files_are_rejected(tmp_path):
    path, _ = _saved(tmp_path)
    data = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(EdgepruneError, match="cut.npz: not a readable sparse weight file"):
        fmt.load(tmp_path / "cut.npz")
    with pytest.raises(EdgepruneError, match="no such file"):
        fmt.load(tmp_path / "absent.npz")
    np.save(tmp_path / "plain.npy", np.zeros(3))
    with pytest.raises(EdgepruneError, match="plain.npy: not a readable sparse weight file .a single array"):
        fmt.load(tmp_path / "plain.npy")
