"""The Torch-Pruning baselines: its own pruner picks the channels, edgeprune's slicer cuts them."""

import copy
import warnings

import pytest
import torch
import torch_pruning as tp

from edgeprune.pruning.coupling import analyze
from edgeprune.pruning.coupling.ops import WEIGHTED
from edgeprune.pruning.macs import count_cost
from edgeprune.pruning.regularizer import MacsModel
from edgeprune.pruning.slicing import slice_model
from edgeprune.pruning.torch_pruning_baseline import CRITERIA, importance, keep_at_ratio, torch_pruning_keep
from tests.pruning.nets import Inverted, randomize

X = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))


def model_and_graph():
    model = randomize(Inverted()).eval()
    return model, analyze(model, X[:1])


def gradients(model):
    model.zero_grad()
    model(X).square().mean().backward()


@pytest.mark.parametrize("criterion", CRITERIA)
def test_our_slice_of_its_choice_computes_what_torch_prunings_own_pruning_does(criterion):
    model, graph = model_and_graph()
    if criterion == "taylor":
        gradients(model)
    keep = keep_at_ratio(model, graph, X[:1], criterion, 0.4, min_keep=0.0)
    assert any(not k.all() for k in keep.values())
    ours = slice_model(model, graph, {g: torch.nonzero(k).flatten() for g, k in keep.items()}).eval()

    theirs = copy.deepcopy(model)
    if criterion == "taylor":
        gradients(theirs)
    names = {n for g in graph.groups if g.prunable for n in g.producers + g.members + g.mask_points}
    ignored = [m for n, m in theirs.named_modules() if isinstance(m, WEIGHTED) and n not in names]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pruner = tp.pruner.MetaPruner(theirs, X[:1], importance=importance(criterion), pruning_ratio=0.4,
                                      global_pruning=True, max_pruning_ratio=1.0, ignored_layers=ignored)
        pruner.step()
    with torch.no_grad():
        torch.testing.assert_close(ours(X), theirs.eval()(X), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("criterion", CRITERIA)
def test_it_lands_on_the_macs_target(criterion):
    model, graph = model_and_graph()
    macs = MacsModel(graph, count_cost(model, tuple(X[:1].shape)).macs, min_keep=0.1)
    target = 0.6 * macs.full_macs()
    keep = torch_pruning_keep(model, graph, X[:1], criterion, macs, target, [(X, None)],
                              lambda out, _: out.square().mean())
    reached = float(macs.macs({g: float(k.sum()) for g, k in keep.items()}))
    assert 0.97 * target <= reached <= target
    assert all(int(k.sum()) >= macs.floor(g) - 1 for g, k in keep.items())
