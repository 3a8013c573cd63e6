"""Folding a reordered conv's row permutation into the next layer, or a gather where it cannot be."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from edgeprune.compiler.sparse.fold import ChannelGather, apply_row_order, plan_fold
from edgeprune.compiler.sparse.reorder import consecutive_groups, exact_groups, permutation, reorder
from edgeprune.compiler.sparse.synthetic import column_sparse

X = torch.randn(2, 6, 9, 11, generator=torch.Generator().manual_seed(0))


class Chain(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(6, 20, 3, padding=1)
        self.bn = nn.BatchNorm2d(20)
        self.conv2 = nn.Conv2d(20, 7, 1)

    def forward(self, x):
        return self.conv2(torch.relu(self.bn(self.conv1(x))))


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(6, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.head = nn.Conv2d(6, 3, 1)

    def forward(self, x):
        return self.head(x + nn.functional.relu6(self.bn(self.conv(x))))


def _sparse_model(cls, conv: str) -> nn.Module:
    torch.manual_seed(0)
    model = cls().eval()
    layer = dict(model.named_modules())[conv]
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(column_sparse(tuple(layer.weight.shape), 0.7, patterns=3, seed=1)))
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.data.uniform_(0.5, 1.5)
    return model


def test_two_convs_in_sequence_fold_the_permutation_and_compute_the_same_function():
    model = _sparse_model(Chain, "conv1")
    expected = model(X)
    weight = model.conv1.weight.detach().numpy()
    order = permutation(reorder(weight))
    assert not np.array_equal(order, np.arange(20))
    plan = apply_row_order(model, "conv1", order)
    assert plan.foldable and plan.per_channel == ("bn",) and plan.consumer == "conv2"
    assert (model(X) - expected).abs().max() <= 1e-5
    # The conv's rows now sit in group order: adjacent rows share patterns, no gather was added.
    reordered = model.conv1.weight.detach().numpy()
    assert len(consecutive_groups(reordered)) == len(exact_groups(weight))
    assert not any(isinstance(m, ChannelGather) for m in model.modules())


def test_a_residual_add_cannot_absorb_the_permutation_so_one_gather_restores_the_order():
    model = _sparse_model(Residual, "conv")
    expected = model(X)
    order = permutation(reorder(model.conv.weight.detach().numpy()))
    plan = apply_row_order(model, "conv", order)
    assert not plan.foldable and "add" in plan.reason
    assert isinstance(model.conv, nn.Sequential) and isinstance(model.conv[1], ChannelGather)
    assert (model(X) - expected).abs().max() <= 1e-5


def test_plan_reports_the_network_output_and_grouped_consumers():
    assert "network output" in plan_fold(Chain(), "conv2").reason
    grouped = nn.Sequential(nn.Conv2d(4, 8, 1), nn.ReLU(), nn.Conv2d(8, 8, 3, groups=8))
    assert "grouped" in plan_fold(grouped, "0").reason
