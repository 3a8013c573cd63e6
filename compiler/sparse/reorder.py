"""Row grouping for the grouped column-sparse format (seed paper, Appendix F "matrix reorder").

``consecutive_groups`` is the no-reorder baseline: only adjacent rows with equal patterns
share a group. ``exact_groups`` gathers all rows with the same kept-column pattern, wherever
they are. ``merge_groups`` then joins groups with near-identical patterns into the union of
their columns (the extra positions are stored as explicit zeros) while a cost model says the
kernel gets cheaper, within a budget of explicit zeros.

The cost model counts, per output pixel, the work of ``compiler.sparse.kernel``:

    cost(group) = ceil(rows / row_tile) * row_tile * cols    multiply-adds, the last row tile padded
                + gather * cols                              copying the group's input columns
                + overhead                                   one more loop nest (its parallel region,
                                                             the accumulator tiles' set-up)

Merging groups A and B pays when ``cost(A u B) < cost(A) + cost(B)``: two small groups with
nearly the same columns waste padded rows and gather their columns twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeprune.compiler.sparse.format import RowGroup, gemm_view


@dataclass(frozen=True)
class CostModel:
    row_tile: int = 8
    gather: float = 2.0
    overhead: float = 64.0

    def cost(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        padded = np.ceil(rows / self.row_tile) * self.row_tile
        return padded * cols + self.gather * cols + self.overhead


def pattern(weight: np.ndarray) -> np.ndarray:
    """Kept columns per row of the GEMM view: exact nonzeros."""
    return gemm_view(weight) != 0


def consecutive_groups(weight: np.ndarray) -> list[RowGroup]:
    """Runs of adjacent rows with the same pattern, in the original order (no reordering)."""
    kept = pattern(weight)
    groups: list[RowGroup] = []
    start = 0
    for r in range(1, len(kept) + 1):
        if r == len(kept) or not np.array_equal(kept[r], kept[start]):
            groups.append(RowGroup(np.arange(start, r), np.flatnonzero(kept[start])))
            start = r
    return groups


def exact_groups(weight: np.ndarray) -> list[RowGroup]:
    """All rows with identical patterns together; groups in order of their first row."""
    kept = pattern(weight)
    _, first, inverse = np.unique(kept, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    return [
        RowGroup(np.flatnonzero(inverse == u), np.flatnonzero(kept[first[u]]))
        for u in np.argsort(first, kind="stable")
    ]


def merge_groups(
    weight: np.ndarray, groups: list[RowGroup], cost: CostModel = CostModel(), max_fill: float = 0.1
) -> list[RowGroup]:
    """Greedily merge the pair of groups that lowers the modelled cost most, while it does.

    ``max_fill`` bounds the explicit zeros all merges together may add, as a fraction of the
    weight's nonzeros (storage grows by at most that much).
    """
    nnz = int(np.count_nonzero(gemm_view(weight)))
    budget = max_fill * nnz
    members = [np.asarray(g.rows) for g in groups]
    pats = np.zeros((len(groups), gemm_view(weight).shape[1]), dtype=bool)
    for i, g in enumerate(groups):
        pats[i, g.cols] = True
    alive = np.ones(len(groups), dtype=bool)
    rows = np.array([len(m) for m in members], dtype=np.float64)
    ncols = pats.sum(1).astype(np.float64)
    inter = pats.astype(np.float32) @ pats.T.astype(np.float32)
    own = cost.cost(rows, ncols)
    fill = 0.0
    while alive.sum() > 1:
        union = ncols[:, None] + ncols[None, :] - inter
        merged_rows = rows[:, None] + rows[None, :]
        delta = cost.cost(merged_rows, union) - own[:, None] - own[None, :]
        zeros = rows[:, None] * (union - ncols[:, None]) + rows[None, :] * (union - ncols[None, :])
        ok = alive[:, None] & alive[None, :] & ~np.eye(len(rows), dtype=bool) & (fill + zeros <= budget) & (delta < 0)
        if not ok.any():
            break
        a, b = np.unravel_index(np.argmin(np.where(ok, delta, np.inf)), delta.shape)
        a, b = (int(a), int(b)) if a < b else (int(b), int(a))
        fill += float(zeros[a, b])
        members[a] = np.concatenate([members[a], members[b]])
        pats[a] |= pats[b]
        alive[b] = False
        rows[a], ncols[a] = rows[a] + rows[b], pats[a].sum()
        inter[a, :] = inter[:, a] = pats.astype(np.float32) @ pats[a].astype(np.float32)
        inter[a, a] = ncols[a]
        own[a] = cost.cost(rows[a : a + 1], ncols[a : a + 1])[0]
    return [RowGroup(np.sort(members[i]), np.flatnonzero(pats[i])) for i in np.flatnonzero(alive)]


def reorder(weight: np.ndarray, merge: bool = True, cost: CostModel = CostModel(), max_fill: float = 0.1) -> list[RowGroup]:
    """Exact-pattern groups, merged where the cost model says it pays (``merge``)."""
    groups = exact_groups(weight)
    return merge_groups(weight, groups, cost, max_fill) if merge else groups


def permutation(groups: list[RowGroup]) -> np.ndarray:
    """Stored row i is original row ``permutation(groups)[i]``."""
    return np.concatenate([np.asarray(g.rows) for g in groups]).astype(np.int64)
