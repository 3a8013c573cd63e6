"""Soft masks, the STE, and recoverable pruned channels (seed paper, section 3.2)."""

import torch

from edgeprune.pruning.bilevel import BilevelPruner, BilevelSettings
from edgeprune.pruning.coupling import analyze
from edgeprune.pruning.macs import count_cost
from edgeprune.pruning.masks import ChannelMasks, binarize
from edgeprune.pruning.regularizer import MacsModel, MacsRegularizer
from tests.pruning.nets import Inverted, masked, random_keep

X = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))


def setup(init=1.0):
    torch.manual_seed(0)
    model = Inverted()
    graph = analyze(model, X[:1])
    return model, graph, ChannelMasks(graph, init=init)


def test_binarize_thresholds_forward_and_passes_gradient_straight_through():
    soft = torch.tensor([0.2, 0.5, 0.51, 0.9], requires_grad=True)
    hard = binarize(soft)
    assert hard.tolist() == [0.0, 0.0, 1.0, 1.0]
    (hard * torch.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
    assert soft.grad.tolist() == [1.0, 2.0, 3.0, 4.0]


def test_masks_prune_exactly_the_channels_below_threshold():
    model, graph, masks = setup()
    keep = random_keep(graph, seed=1)
    with torch.no_grad():
        for g, kept in keep.items():
            masks.soft[str(g)].fill_(0.3)
            masks.soft[str(g)][kept] = 0.8
    model.eval()
    with masked(model, graph, keep):
        expected = model(X)
    masks.attach(model)
    assert torch.equal(model(X), expected)
    assert {g: k.tolist() for g, k in masks.kept_indices().items()} == {g: k.tolist() for g, k in keep.items()}
    masks.detach()
    assert not torch.equal(model(X), expected)


def test_gradient_reaches_soft_masks_but_not_pruned_weights():
    model, graph, masks = setup()
    group = next(g for g in graph.groups if g.prunable)
    with torch.no_grad():
        masks.soft[str(group.index)][0] = 0.1
    masks.attach(model)
    model.train()
    model(X).square().mean().backward()
    assert all(s.grad is not None and s.grad.abs().sum() > 0 for s in masks.soft.values())
    producer = dict(model.named_modules())[group.producers[0]]
    assert producer.weight.grad[0].abs().sum() == 0
    assert producer.weight.grad[1:].abs().sum() > 0


def test_pruned_channel_keeps_its_weights_and_recovers():
    model, graph, masks = setup()
    masks.attach(model)
    group = next(g for g in graph.groups if g.prunable)
    producer = dict(model.named_modules())[group.producers[0]]
    macs = MacsModel(graph, count_cost(model, tuple(X[:1].shape)).macs)
    regularizer = MacsRegularizer(macs, 0.9 * macs.full_macs())
    pruner = BilevelPruner(model, masks, regularizer, lambda out, _: out.square().mean(), BilevelSettings(weight_lr=0.01))
    labels = torch.zeros(2, dtype=torch.long)
    pruner.weight_step(X, labels)  # momentum buffers now hold every channel's past update
    with torch.no_grad():
        masks.soft[str(group.index)][0] = 0.2
    before = producer.weight.detach().clone()
    for _ in range(3):
        pruner.weight_step(X, labels)
    after = producer.weight.detach()
    assert torch.equal(after[0], before[0]), "a pruned channel's weights must not move"
    assert not torch.equal(after[1:], before[1:])
    with torch.no_grad():
        masks.soft[str(group.index)][0] = 0.9
    model.eval()
    out_with = model(X)
    with torch.no_grad():
        masks.soft[str(group.index)][0] = 0.2
    assert not torch.allclose(out_with, model(X)), "the recovered channel contributes again"
