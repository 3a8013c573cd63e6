"""Column masks: masked forward and STE, masks read off sparse weights, and the bi-level steps."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from edgeprune.compiler.sparse.reorder import exact_groups
from edgeprune.pruning.bilevel import BilevelPruner, BilevelSettings, implicit_term
from edgeprune.pruning.column_masks import ColumnMacsRegularizer, ColumnMasks
from edgeprune.pruning.macs import count_cost

X = torch.randn(2, 3, 12, 12, generator=torch.Generator().manual_seed(0))
Y = torch.randint(0, 4, (2, 12, 12), generator=torch.Generator().manual_seed(1))


def tiny() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 12, 3, padding=1), nn.BatchNorm2d(12), nn.ReLU(),
        nn.Conv2d(12, 10, 1), nn.ReLU(), nn.Conv2d(10, 4, 1),
    )


def half_pruned(model: nn.Module, row_group: int = 4) -> ColumnMasks:
    masks = ColumnMasks.for_model(model, X, row_group=row_group)
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():  # kept entries spread over (0.51, 0.9), so they cross 0.5 one by one
        for soft in masks.soft.values():
            soft.copy_(0.51 + 0.39 * torch.rand(soft.shape, generator=gen))
            soft[:, ::2] = 0.25
    return masks.attach(model)


def test_masked_forward_uses_weight_times_mask_and_ste_reaches_the_soft_masks():
    model = tiny().eval()
    masks = half_pruned(model)
    assert [layer.name for layer in masks.layers.values()] == ["0", "3", "5"]
    assert [masks.soft[k].shape for k in masks.soft] == [(3, 27), (3, 12), (1, 10)]
    out = model(X)
    reference = tiny().eval()
    with torch.no_grad():
        for key, layer in masks.layers.items():
            w = dict(reference.named_modules())[layer.name].weight
            w.mul_(masks.matrix(key).reshape(w.shape))
    torch.testing.assert_close(out, reference(X))
    # STE: d loss / d s = sum over the entry's weights of (d loss / d masked weight) * weight.
    F.cross_entropy(out, Y).backward()
    masks.detach()
    assert torch.equal(model(X), tiny().eval()(X))  # detached: the plain model again
    grad_masked = torch.autograd.grad(F.cross_entropy(reference(X), Y), reference[3].weight)[0]
    expected = masks.unit_sum("1", grad_masked * model[3].weight.detach())
    torch.testing.assert_close(masks.soft["1"].grad, expected)


def test_from_dense_weights_reads_the_pattern_off_exact_zeros():
    model = tiny().eval()
    with torch.no_grad():
        model[3].weight[2, 5] = 0.0
        model[3].weight[7, :4] = 0.0
        model[0].weight[0, 1] = 0.0
    masks = ColumnMasks.from_dense_weights(model, X, names=["0", "3"], row_group=1)
    assert torch.equal(masks.matrix("1").bool(), (model[3].weight.reshape(10, 12) != 0))
    assert masks.kept_counts()["1"] == 120 - 5
    expected = model(X)
    masks.attach(model)
    assert torch.equal(model(X), expected)
    # Row groups of 4 keep the union of their rows' columns: nothing is lost.
    grouped = ColumnMasks.from_dense_weights(model, X, names=["3"], row_group=4)
    # (row 7's zeros in columns 0-3 are kept as explicit zeros: rows 4-6 use those columns.)
    assert grouped.kept_counts()["0"] == 120 and grouped.matrix("0")[7, 0] == 1
    with torch.no_grad():
        model[3].weight[4:8, 0] = 0.0
    assert ColumnMasks.from_dense_weights(model, X, names=["3"], row_group=4).kept_counts()["0"] == 116


def test_bad_layer_names_are_rejected():
    from edgeprune.base.errors import EdgepruneError

    with pytest.raises(EdgepruneError, match="not a conv or linear layer of the model: 2"):
        ColumnMasks.for_model(tiny(), X, names=["2"])


@pytest.fixture
def pruner():
    model = tiny().train()
    masks = half_pruned(model)
    total = count_cost(model, (1, 3, 12, 12)).macs
    regularizer = ColumnMacsRegularizer(masks, total, 0.4 * total, beta=1.0)
    return BilevelPruner(model, masks, regularizer, F.cross_entropy, BilevelSettings(weight_lr=0.1, mask_lr=0.05))


def test_weight_steps_leave_pruned_columns_exactly_as_they_were(pruner):
    weight = pruner.model[3].weight
    before = weight.detach().clone()
    for _ in range(3):
        pruner.weight_step(X, Y)
    pruned = pruner.masks.matrix("1").reshape(weight.shape) == 0
    assert torch.equal(weight.detach()[pruned], before[pruned])
    assert not torch.equal(weight.detach()[~pruned], before[~pruned])


def test_mask_step_applies_equation_15_per_entry_and_keeps_a_column_per_row_group(pruner):
    masks, model = pruner.masks, pruner.model
    loss = F.cross_entropy(model(X), Y) + pruner.regularizer(masks.kept_counts())
    model.zero_grad()
    loss.backward()
    term = implicit_term(masks, pruner.per_channel, pruner.settings.lam)["1"]
    by_hand = pruner.settings.lam * masks.binary("1") * masks.unit_sum("1", model[3].weight.grad.pow(2))
    torch.testing.assert_close(term, by_hand.detach())
    assert bool((term[:, ::2] == 0).all()) and bool((term[:, 1::2] > 0).any())

    kept = sum(float(v.detach()) for v in masks.kept_counts().values())
    for _ in range(3):
        pruner.mask_step(X, Y)
    assert 40 < sum(float(v.detach()) for v in masks.kept_counts().values()) < kept  # the MACs term prunes
    with torch.no_grad():
        for soft in masks.soft.values():
            soft.fill_(0.1)
    pruner.mask_step(X, Y)
    for key in masks.soft:
        assert bool((masks.binary(key).sum(1) >= 1).all())


def test_pruned_weights_have_one_pattern_per_row_group(pruner):
    for _ in range(3):
        pruner.mask_step(X, Y)
    pruner.masks.prune_(pruner.model)
    weight = pruner.model[3].weight.detach().numpy()
    assert len(exact_groups(weight)) <= pruner.masks.layers["1"].groups
    assert 0.3 < pruner.masks.sparsity() < 1.0


def test_linear_layers_are_masked_per_row_group_too():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 12 * 12, 6))
    masks = ColumnMasks.for_model(model, X, row_group=4)
    layer = masks.layers["0"]
    assert (layer.rows, layer.cols, layer.groups, layer.pixels) == (6, 432, 2, 1)
    with torch.no_grad():
        masks.soft["0"][1, 100:] = 0.0
    masks.attach(model)
    expected = F.linear(X.flatten(1), model[1].weight * masks.matrix("0"), model[1].bias)
    torch.testing.assert_close(model(X), expected)
    assert masks.kept_counts()["0"] == 6 * 432 - 2 * 332
