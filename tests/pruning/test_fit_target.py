import pytest
import torch

from edgeprune.pruning.coupling import analyze, default_prunable
from edgeprune.pruning.fit_target import fit_to_target
from edgeprune.pruning.macs import count_cost
from edgeprune.pruning.magnitude import l1_scores
from edgeprune.pruning.models import build_model
from edgeprune.pruning.regularizer import MacsModel
from edgeprune.pruning.slicing import slice_model


@pytest.fixture(scope="module")
def tiny():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    shape = (1, 3, 64, 64)
    model = build_model("topformer-tiny", num_classes=8).eval()
    graph = analyze(model, torch.zeros(shape), default_prunable("topformer-tiny"))
    return model, graph, MacsModel(graph, count_cost(model, shape).macs), shape


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.5, 0.7, 0.9])
def test_sliced_macs_land_within_two_percent_under_the_target(tiny, fraction):
    model, graph, macs, shape = tiny
    low, full = macs.min_macs(), macs.full_macs()
    target = max(fraction * full, low * 1.05)
    scores = l1_scores(model, graph)
    keep = fit_to_target(scores, {g: torch.ones_like(s, dtype=torch.bool) for g, s in scores.items()}, macs, target)
    sliced = slice_model(model, graph, {g: torch.nonzero(k).flatten() for g, k in keep.items()})
    got = count_cost(sliced, shape).macs
    assert target * 0.98 <= got <= target
    assert all(k.any() for k in keep.values())


def test_each_group_keeps_its_best_scored_channels(tiny):
    model, graph, macs, _ = tiny
    scores = {g: torch.rand(graph.groups[g].size, generator=torch.Generator().manual_seed(g))
              for g in l1_scores(model, graph)}
    keep = fit_to_target(scores, {g: torch.ones_like(s, dtype=torch.bool) for g, s in scores.items()},
                         macs, 0.6 * macs.full_macs())
    for g, kept in keep.items():
        if kept.any() and (~kept).any():
            assert scores[g][kept].min() >= scores[g][~kept].max()
