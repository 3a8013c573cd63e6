"""The differentiable MACs count and the MACs regularizer (Eq. 4-5)."""

import pytest
import torch

from edgeprune.base.errors import EdgepruneError
from edgeprune.pruning.coupling import analyze, default_prunable
from edgeprune.pruning.macs import count_cost
from edgeprune.pruning.masks import ChannelMasks
from edgeprune.pruning.models import build_model
from edgeprune.pruning.regularizer import MacsModel, MacsRegularizer
from edgeprune.pruning.slicing import slice_model
from tests.pruning.nets import Concat, Inverted, random_keep

SHAPE = (1, 3, 32, 32)


@pytest.mark.parametrize("net", [Inverted, Concat])
def test_macs_of_kept_counts_equal_the_sliced_models_count(net):
    torch.manual_seed(0)
    model = net().eval()
    graph = analyze(model, torch.zeros(SHAPE))
    macs = MacsModel(graph, count_cost(model, SHAPE).macs)
    assert macs.full_macs() == count_cost(model, SHAPE).macs
    keep = random_keep(graph, seed=3, fraction=0.4)
    sliced = slice_model(model, graph, keep)
    counts = {g: float(k.numel()) for g, k in keep.items()}
    assert int(macs.macs(counts)) == count_cost(sliced, SHAPE).macs


def test_topformer_tiny_counts_match_after_slicing():
    torch.set_num_threads(1)
    model = build_model("topformer-tiny", num_classes=8).eval()
    shape = (1, 3, 64, 64)
    graph = analyze(model, torch.zeros(shape), default_prunable("topformer-tiny"))
    macs = MacsModel(graph, count_cost(model, shape).macs)
    keep = random_keep(graph, seed=0, fraction=0.3)
    sliced = slice_model(model, graph, keep)
    assert int(macs.macs({g: float(k.numel()) for g, k in keep.items()})) == count_cost(sliced, shape).macs


def test_gradient_of_macs_is_each_channels_cost():
    model = Inverted().eval()
    graph = analyze(model, torch.zeros(SHAPE))
    macs = MacsModel(graph, count_cost(model, SHAPE).macs)
    masks = ChannelMasks(graph)
    macs.macs(masks.kept_counts()).backward()
    for g in masks.group_indices:
        full = {h: float(graph.groups[h].size) for h in masks.group_indices}
        one_less = {**full, g: full[g] - 1}
        cost = float(macs.macs(full) - macs.macs(one_less))
        assert torch.allclose(masks.soft[str(g)].grad, torch.full_like(masks.soft[str(g)], cost))


def test_regularizer_is_in_channel_units_and_targets_must_be_reachable():
    model = Inverted().eval()
    graph = analyze(model, torch.zeros(SHAPE))
    macs = MacsModel(graph, count_cost(model, SHAPE).macs)
    full = macs.full_macs()
    reg = MacsRegularizer(macs, full / 2, beta=0.01)
    channels = sum(g.size for g in graph.groups if g.prunable)
    mean_cost = full / channels
    # (MACs - C)^2 / (C * m) with MACs = 2C: C / m
    assert float(reg({})) == pytest.approx(0.01 * (full / 2) / mean_cost)
    with pytest.raises(EdgepruneError, match="out of reach"):
        MacsRegularizer(macs, macs.min_macs() * 0.5)
    with pytest.raises(EdgepruneError, match="out of reach"):
        MacsRegularizer(macs, full * 1.5)
