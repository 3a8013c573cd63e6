"""Row grouping: exact patterns, cost-driven merging of near-identical ones."""

from __future__ import annotations

import numpy as np

from edgeprune.compiler.sparse import format as fmt
from edgeprune.compiler.sparse.reorder import CostModel, consecutive_groups, exact_groups, merge_groups, permutation, reorder
from edgeprune.compiler.sparse.synthetic import column_sparse


def test_exact_groups_collect_rows_with_equal_patterns_wherever_they_are():
    weight = column_sparse((96, 40), 0.75, patterns=6, seed=3)
    groups = exact_groups(weight)
    assert len(groups) == 6
    assert sorted(permutation(groups)) == list(range(96))
    for g in groups:
        kept = weight[g.rows] != 0
        assert np.array_equal(kept, np.broadcast_to(kept[0], kept.shape))
        assert np.array_equal(np.flatnonzero(kept[0]), g.cols)
    # Shuffled rows leave runs of one or two rows when nothing is reordered.
    assert len(consecutive_groups(weight)) > 50


def test_merging_joins_near_identical_patterns_within_the_zero_budget():
    rng = np.random.default_rng(0)
    weight = column_sparse((64, 64), 0.75, patterns=4, seed=1)
    # Drop one weight in 8 rows: new patterns, each one column short of a big group's.
    for r in rng.choice(64, 8, replace=False):
        weight[r, rng.choice(np.flatnonzero(weight[r]))] = 0
    exact = exact_groups(weight)
    merged = merge_groups(weight, exact, max_fill=0.05)
    assert len(exact) >= 10 and len(merged) == 4
    sparse = fmt.encode(weight, merged)
    assert np.array_equal(sparse.weight(), weight)
    assert sparse.explicit_zeros == 8
    # With no budget for explicit zeros nothing merges; dissimilar patterns never do.
    assert len(merge_groups(weight, exact, max_fill=0.0)) == len(exact)
    far = column_sparse((64, 64), 0.75, patterns=4, seed=2)
    assert len(reorder(far)) == 4


def test_cost_model_prefers_fewer_fuller_row_tiles():
    cost = CostModel(row_tile=8, gather=2.0, overhead=64.0)
    apart = cost.cost(np.array([4.0, 4.0]), np.array([10.0, 10.0])).sum()
    together = cost.cost(np.array([8.0]), np.array([11.0])).sum()
    assert together < apart
