"""The implicit gradient of Eq. 15 against a direct computation of Eq. 13 with a second copy."""

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from edgeprune.pruning.bilevel import (
    BilevelPruner,
    BilevelSettings,
    calibrate_lambda,
    channel_weights,
    implicit_term,
)
from edgeprune.pruning.coupling import analyze
from edgeprune.pruning.macs import count_cost
from edgeprune.pruning.masks import ChannelMasks
from edgeprune.pruning.regularizer import MacsModel, MacsRegularizer
from tests.pruning.nets import Inverted

LAM = 0.1
X = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
Y = torch.randint(0, 4, (4, 4, 4), generator=torch.Generator().manual_seed(1))


def loss_fn(logits, labels):
    return F.cross_entropy(logits, labels)


@pytest.fixture
def problem():
    torch.manual_seed(0)
    model = Inverted().train()
    graph = analyze(model, X[:1])
    masks = ChannelMasks(graph, init=0.75)
    with torch.no_grad():  # prune a few channels of every group
        for soft in masks.soft.values():
            soft[::3] = 0.25
    masks.attach(model)
    macs = MacsModel(graph, count_cost(model, (1, 3, 16, 16)).macs)
    regularizer = MacsRegularizer(macs, 0.7 * macs.full_macs())
    return model, masks, regularizer


def test_equation_15_equals_equation_13_with_a_second_copy(problem):
    model, masks, regularizer = problem
    per_channel = channel_weights(model, masks)
    # Eq. 15: one backward pass of L_m, then lambda * b * (grad_w L_m)^2 per channel.
    loss = loss_fn(model(X), Y) + regularizer(masks.kept_counts())
    model.zero_grad()
    loss.backward()
    grad_w = {id(p): p.grad.detach().clone() for ps in per_channel.values() for p in ps}
    ours = implicit_term(masks, per_channel, LAM)

    # Eq. 13 directly: a copy w_b = w * b of the channel weights, the gradient of the plain CE
    # loss at w_b, times grad_w L_m, summed over each channel's weights.
    names = {id(p): n for n, p in model.named_parameters()}
    copies = {}
    for group, params in per_channel.items():
        b = masks.binary(group).detach()
        for p in params:
            copies[names[id(p)]] = (p.detach() * b.view([-1] + [1] * (p.dim() - 1))).requires_grad_(True)
    ce = loss_fn(functional_call(model, copies, (X,)), Y)
    grads_wb = dict(zip(copies, torch.autograd.grad(ce, list(copies.values()))))
    for group, params in per_channel.items():
        direct = torch.zeros(masks.soft[str(group)].shape)
        for p in params:
            product = grads_wb[names[id(p)]] * grad_w[id(p)]
            direct += product.reshape(p.shape[0], -1).sum(1)
        torch.testing.assert_close(ours[group], LAM * direct, rtol=1e-4, atol=1e-10)
        assert ours[group].abs().sum() > 0


@pytest.mark.parametrize("push", ["macs", "even"])
@pytest.mark.parametrize("implicit", [True, False])
def test_mask_step_moves_masks_by_equation_15(problem, implicit, push):
    model, masks, regularizer = problem
    lr = 1e-3
    settings = BilevelSettings(mask_lr=lr, lam=LAM, implicit=implicit, push=push)
    pruner = BilevelPruner(model, masks, regularizer, loss_fn, settings)
    before = {k: v.detach().clone() for k, v in masks.soft.items()}
    weights_before = [p.detach().clone() for p in model.parameters()]
    # The expected gradient, computed independently of mask_step.
    softs = list(masks.soft.values())
    ce_grads = torch.autograd.grad(loss_fn(model(X), Y), softs)
    reg_grads = torch.autograd.grad(regularizer(masks.kept_counts()), softs)
    if push == "even":  # every channel the same magnitude, each with its own sign
        mean = torch.cat([g.flatten() for g in reg_grads]).abs().mean()
        reg_grads = [torch.sign(g) * mean for g in reg_grads]
        assert len({round(float(g.abs().max()), 12) for g in reg_grads}) == 1
    expected = {key: c + r for key, c, r in zip(masks.soft.keys(), ce_grads, reg_grads)}
    loss_fn(model(X), Y).backward(inputs=list(model.parameters()))
    if implicit:
        for group, term in implicit_term(masks, channel_weights(model, masks), LAM).items():
            expected[str(group)] = expected[str(group)] - term
    model.zero_grad()
    pruner.mask_step(X, Y)
    for key, soft in masks.soft.items():
        torch.testing.assert_close(soft.detach(), (before[key] - lr * expected[key]).clamp(0, 1))
    for p, q in zip(model.parameters(), weights_before):
        assert torch.equal(p.detach(), q), "the mask step must not move the weights"


def test_weight_step_leaves_masks_alone(problem):
    model, masks, regularizer = problem
    pruner = BilevelPruner(model, masks, regularizer, loss_fn, BilevelSettings())
    before = {k: v.detach().clone() for k, v in masks.soft.items()}
    pruner.weight_step(X, Y)
    assert all(torch.equal(masks.soft[k], before[k]) for k in before)


def test_lambda_is_not_a_weight_decay(problem):
    # The seed's 1/(2 lambda) ||w||^2 scales the inverse Hessian of Eq. 15; as a decay of
    # 1/lambda = 1000 it would move every weight even where the loss has no gradient.
    model, masks, regularizer = problem
    settings = BilevelSettings(weight_lr=0.1, weight_decay=0.0, lam=1e-3)
    pruner = BilevelPruner(model, masks, regularizer, lambda out, _: 0.0 * out.sum(), settings)
    before = [p.detach().clone() for p in model.parameters()]
    pruner.weight_step(X, Y)
    assert all(torch.equal(p.detach(), q) for p, q in zip(model.parameters(), before))


def test_weight_steps_apply_the_training_weight_decay_to_kept_channels_only(problem):
    model, masks, regularizer = problem
    settings = BilevelSettings(weight_lr=0.1, weight_decay=0.5, momentum=0.0)
    pruner = BilevelPruner(model, masks, regularizer, lambda out, _: 0.0 * out.sum(), settings)
    group, params = next(iter(channel_weights(model, masks).items()))
    keep = masks.binary(group).detach().bool()
    before = params[0].detach().clone()
    pruner.weight_step(X, Y)
    torch.testing.assert_close(params[0].detach()[keep], before[keep] * (1 - 0.1 * 0.5))
    assert torch.equal(params[0].detach()[~keep], before[~keep])


def test_a_mask_step_prunes_at_most_max_flips_channels_the_lowest_first(problem):
    model, masks, _ = problem
    graph_macs = MacsModel(masks.graph, count_cost(model, (1, 3, 16, 16)).macs)
    # A regularizer far stronger than the loss would flip every channel in one step.
    regularizer = MacsRegularizer(graph_macs, 0.3 * graph_macs.full_macs(), beta=100.0)
    before = {k: v.detach() > masks.tau for k, v in masks.soft.items()}
    unbounded = BilevelPruner(model, masks, regularizer, loss_fn, BilevelSettings(mask_lr=1.0, implicit=False))
    saved = {k: v.detach().clone() for k, v in masks.soft.items()}
    unbounded.mask_step(X, Y)
    flipped_unbounded = sum(int((before[k] & (v <= masks.tau)).sum()) for k, v in masks.soft.items())
    proposed = {k: v.detach().clone() for k, v in masks.soft.items()}
    with torch.no_grad():
        for k, v in masks.soft.items():
            v.copy_(saved[k])
    bounded = BilevelPruner(model, masks, regularizer, loss_fn, BilevelSettings(mask_lr=1.0, implicit=False, max_flips=3))
    bounded.mask_step(X, Y)
    flipped = {k: before[k] & (v.detach() <= masks.tau) for k, v in masks.soft.items()}
    assert flipped_unbounded > 3 and sum(int(f.sum()) for f in flipped.values()) == 3
    # The three that went are the three the unbounded step pushed lowest.
    candidates = torch.cat([proposed[k][before[k] & (proposed[k] <= masks.tau)] for k in proposed])
    went = torch.cat([proposed[k][flipped[k]] for k in proposed])
    torch.testing.assert_close(went.sort().values, candidates.sort().values[:3])


@pytest.mark.parametrize("rho", [0.5, 4.0])
def test_calibrated_lambda_makes_the_implicit_term_rho_times_the_loss_gradient(problem, rho):
    model, masks, regularizer = problem
    pruner = BilevelPruner(model, masks, regularizer, loss_fn, BilevelSettings())
    lam = calibrate_lambda(pruner, [(X, Y)], rho)
    ce = loss_fn(model(X), Y)
    model.zero_grad()
    ce.backward()
    direct = implicit = 0.0
    for group, term in implicit_term(masks, channel_weights(model, masks), lam).items():
        kept = masks.binary(group).detach() > 0
        direct += float(masks.soft[str(group)].grad[kept].abs().sum())
        implicit += float(term[kept].sum())
    assert implicit == pytest.approx(rho * direct, rel=1e-4)
