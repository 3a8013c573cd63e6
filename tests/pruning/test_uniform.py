"""The uniform-width baseline: one factor for every group, the best channels by L1, under the target."""

import torch

from edgeprune.pruning.coupling import analyze
from edgeprune.pruning.macs import count_cost
from edgeprune.pruning.magnitude import l1_scores
from edgeprune.pruning.regularizer import MacsModel
from edgeprune.pruning.uniform import uniform_keep
from tests.pruning.nets import Inverted, randomize

X = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))


def test_every_group_keeps_one_fraction_of_its_best_channels_under_the_target():
    model = randomize(Inverted()).eval()
    graph = analyze(model, X)
    macs = MacsModel(graph, count_cost(model, tuple(X.shape)).macs)
    target = 0.5 * macs.full_macs()
    keep = uniform_keep(model, graph, macs, target)
    assert float(macs.macs({g: float(k.sum()) for g, k in keep.items()})) <= target
    fractions = [float(k.sum()) / k.numel() for k in keep.values()]
    sizes = [k.numel() for k in keep.values()]
    # One factor, up to the rounding of each group's width.
    assert max(f - min(fractions) for f in fractions) <= 1.0 / min(sizes) + 1e-9
    scores = l1_scores(model, graph)
    for group, kept in keep.items():
        assert scores[group][kept].min() >= scores[group][~kept].max()
